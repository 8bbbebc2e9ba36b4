# bla_vs_swa.gp — the MQAR frontiers of two variants (BLA and SWA by default) with the state-efficiency
# ratio marked at each accuracy level: an arrow from A's needed state to B's, labelled "R x". Filled by
# `recallbench plot` through -e: datafile (four blocks: A's points, A's Pareto frontier, B's points, B's
# frontier; first line of each the quoted title; columns: state_bytes accuracy), ratiofile (one row per level both reach: level state_a state_b ratio
# qualifier "spread over seeds, or empty"; may be empty), nratio, colors (two words), outbase, ptitle, optional xt, xmin, xmax.
if (!exists("ptitle")) ptitle = "State efficiency"
set logscale x 2
set format x "%.0b %BB"
if (exists("xt")) { eval("set xtics (".xt.")") }
if (exists("xmin")) { set xrange [xmin:xmax] }
set xlabel "Recurrent state size (bytes, log_2 scale)"
set ylabel "Accuracy (mean over test configurations and seeds)"
set yrange [0:1.05]
set grid xtics ytics lc rgb "#dddddd"
set border 3 lw 1.2
set tics nomirror out
set key bottom right Left reverse box opaque samplen 2 spacing 1.2

do for [term in "png svg"] {
    if (term eq "png") {
        set terminal pngcairo size 1000, 650 enhanced font "Sans,12" linewidth 1.2
        set output outbase.".png"
    } else {
        set terminal svg size 1000, 650 enhanced font "Sans,12" background "white"
        set output outbase.".svg"
    }
    set title ptitle font ",14"
    if (nratio > 0) {
        plot datafile index 0 using 1:2 with points pt 6 ps 1.0 lc rgb word(colors, 1) notitle, \
             datafile index 1 using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb word(colors, 1) title columnheader(1), \
             datafile index 2 using 1:2 with points pt 4 ps 1.0 lc rgb word(colors, 2) notitle, \
             datafile index 3 using 1:2 with linespoints lw 2 pt 5 ps 1.3 lc rgb word(colors, 2) title columnheader(1), \
             ratiofile using 2:1:($3 - $2):(0) with vectors head filled size screen 0.012,20 lw 1.5 lc rgb "#444444" notitle, \
             ratiofile using (sqrt($2 * $3)):1:(sprintf("%s%.2fx%s", stringcolumn(5) eq "-" ? "" : stringcolumn(5), $4, stringcolumn(6))) \
                 with labels offset 0, 0.8 font ",11" notitle
    } else {
        plot datafile index 0 using 1:2 with points pt 6 ps 1.0 lc rgb word(colors, 1) notitle, \
             datafile index 1 using 1:2 with linespoints lw 2 pt 7 ps 1.3 lc rgb word(colors, 1) title columnheader(1), \
             datafile index 2 using 1:2 with points pt 4 ps 1.0 lc rgb word(colors, 2) notitle, \
             datafile index 3 using 1:2 with linespoints lw 2 pt 5 ps 1.3 lc rgb word(colors, 2) title columnheader(1)
    }
    set output
}
