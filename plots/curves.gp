# curves.gp — training curves: test accuracy and training loss vs epoch. Filled by `recallbench plot` through
# -e: accfile and lossfile (one block per line, separated by two blank lines, first line the quoted title;
# columns: epoch value), nacc, nloss, acccolors, losscolors, outbase (writes outbase.png and outbase.svg),
# ptitle, acclab.
if (!exists("ptitle")) ptitle = "Training curves"
if (!exists("acclab")) acclab = "Test accuracy"
pts(i) = word("7 5 9 11 13 15 4 6 8 10", (i - 1) % 10 + 1) + 0

set grid xtics ytics lc rgb "#dddddd"
set border 3 lw 1.2
set tics nomirror out
set xlabel "Epoch"

do for [term in "png svg"] {
    if (term eq "png") {
        set terminal pngcairo size 1400, 600 enhanced font "Sans,12" linewidth 1.2
        set output outbase.".png"
    } else {
        set terminal svg size 1400, 600 enhanced font "Sans,12" background "white"
        set output outbase.".svg"
    }
    set multiplot layout 1, 2 title ptitle font ",14"
    set ylabel acclab
    set yrange [0:1.02]
    unset logscale y
    set key below Left reverse samplen 2
    plot for [i=1:nacc] accfile index (i-1) using 1:2 with linespoints lw 2 pt pts(i) ps 0.9 \
         lc rgb word(acccolors, i) title columnheader(1)
    set ylabel "Training loss (cross-entropy, log scale)"
    set yrange [*:*]
    set logscale y
    plot for [i=1:nloss] lossfile index (i-1) using 1:2 with linespoints lw 2 pt pts(i) ps 0.9 \
         lc rgb word(losscolors, i) title columnheader(1)
    unset multiplot
    set output
}
