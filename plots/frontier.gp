# frontier.gp — accuracy vs recurrent state size (bytes, log2 axis), one line per variant, as in the
# zoology/Based frontier figures. Filled by `recallbench plot` through -e: datafile (one block per variant,
# separated by two blank lines, first line the quoted title; columns: state_bytes accuracy tvd), outbase
# (writes outbase.png and outbase.svg), nvar, colors (one per block), ptitle, ylab, tvd (1: add a TVD panel),
# optional xt (xtics list '"1 KiB" 1024, ...'), xmin, xmax.
if (!exists("ptitle")) ptitle = "Accuracy vs state size"
if (!exists("ylab")) ylab = "Accuracy"
if (!exists("tvd")) tvd = 0
pts(i) = word("7 5 9 11 13 15 4 6 8 10", (i - 1) % 10 + 1) + 0

set logscale x 2
set format x "%.0b %BB"
if (exists("xt")) { eval("set xtics (".xt.")") }
if (exists("xmin")) { set xrange [xmin:xmax] }
set xlabel "Recurrent state size (bytes, log_2 scale)"
set grid xtics ytics lc rgb "#dddddd"
set border 3 lw 1.2
set tics nomirror out
set key bottom right Left reverse box opaque samplen 2 spacing 1.2

do for [term in "png svg"] {
    if (term eq "png") {
        set terminal pngcairo size (tvd ? 1400 : 900), 600 enhanced font "Sans,12" linewidth 1.2
        set output outbase.".png"
    } else {
        set terminal svg size (tvd ? 1400 : 900), 600 enhanced font "Sans,12" background "white"
        set output outbase.".svg"
    }
    if (tvd) { set multiplot layout 1, 2 title ptitle font ",14" }
    if (!tvd) { set title ptitle font ",14" } else { unset title }
    set ylabel ylab
    set yrange [0:1.02]
    plot for [i=1:nvar] datafile index (i-1) using 1:2 with linespoints lw 2 pt pts(i) ps 1.3 \
         lc rgb word(colors, i) title columnheader(1)
    if (tvd) {
        set ylabel "TVD to the true next-token distribution (lower is better)"
        set yrange [0:*]
        set key top right
        plot for [i=1:nvar] datafile index (i-1) using 1:3 with linespoints lw 2 pt pts(i) ps 1.3 \
             lc rgb word(colors, i) title columnheader(1)
        set key bottom right
        unset multiplot
    }
    set output
}
