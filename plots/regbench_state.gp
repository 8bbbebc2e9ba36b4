# regbench_state.gp — RegBench greedy accuracy (left) and TVD (right) vs recurrent state size (bytes, log2
# axis), one line per (variant, training-automata count), with the in-context 2-gram and 3-gram baselines as
# horizontal lines. Filled by `recallbench plot` through -e: datafile (one block per series, separated by two
# blank lines, first line the quoted title; columns: state_bytes accuracy tvd), outbase (writes outbase.png
# and outbase.svg), nvar, colors and dashes (one word per block), b2acc b3acc b2tvd b3tvd (NaN: not drawn),
# ptitle, optional xt (xtics list), xmin, xmax.
if (!exists("ptitle")) ptitle = "RegBench: accuracy and TVD vs state size"
pts(i) = word("7 5 9 11 13 15 4 6 8 10", (i - 1) % 10 + 1) + 0

set logscale x 2
set format x "%.0b %BB"
if (exists("xt")) { eval("set xtics (".xt.")") }
if (exists("xmin")) { set xrange [xmin:xmax] }
set xlabel "Recurrent state size (bytes, log_2 scale)"
set grid xtics ytics lc rgb "#dddddd"
set border 3 lw 1.2
set tics nomirror out
set key outside right top Left reverse samplen 3 spacing 1.1 font ",10"

do for [term in "png svg"] {
    if (term eq "png") {
        set terminal pngcairo size 1600, 620 enhanced font "Sans,12" linewidth 1.2
        set output outbase.".png"
    } else {
        set terminal svg size 1600, 620 enhanced font "Sans,12" background "white"
        set output outbase.".svg"
    }
    set multiplot layout 1, 2 title ptitle font ",14"
    set ylabel "Greedy next-token accuracy"
    set yrange [0:1.02]
    plot for [i=1:nvar] datafile index (i-1) using 1:2 with linespoints lw 2 pt pts(i) ps 1.2 \
         lc rgb word(colors, i) dt int(word(dashes, i)) title columnheader(1), \
         (b2acc == b2acc ? b2acc : 1/0) with lines lw 1.5 dt 3 lc rgb "#555555" title "in-context 2-gram", \
         (b3acc == b3acc ? b3acc : 1/0) with lines lw 1.5 dt 4 lc rgb "#000000" title "in-context 3-gram"
    set ylabel "TVD to the true next-token distribution (lower is better)"
    set yrange [0:*]
    plot for [i=1:nvar] datafile index (i-1) using 1:3 with linespoints lw 2 pt pts(i) ps 1.2 \
         lc rgb word(colors, i) dt int(word(dashes, i)) title columnheader(1), \
         (b2tvd == b2tvd ? b2tvd : 1/0) with lines lw 1.5 dt 3 lc rgb "#555555" title "in-context 2-gram", \
         (b3tvd == b3tvd ? b3tvd : 1/0) with lines lw 1.5 dt 4 lc rgb "#000000" title "in-context 3-gram"
    unset multiplot
    set output
}
