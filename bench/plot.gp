# bench/plot.gp: docs/bench.svg from bench/run.sh's results (called by it).
# Variables: dir (the data files), out (the SVG), conts (the contention series, by file).
set terminal svg size 1200,860 noenhanced font 'sans,12' background '#ffffff'
set output out
set multiplot layout 2,2 title 'sem benchmarks (medians; bars: min to max over the rounds)'
set grid ytics lc rgb '#dddddd'

# 1. Per-call cost.
unset key
set title 'Per-call cost: one acquire/release pair'
set ylabel 'ms per pair (log)'
set logscale y
set style fill solid 0.5 border -1
set boxwidth 0.6
set xtics rotate by -30 nomirror
set yrange [1:*]
plot dir.'/calls.dat' using 0:2:xtic(1) with boxes lc rgb '#4a90d9' notitle, \
     '' using 0:3:(0):($4 - $3) with vectors nohead lw 1.5 lc rgb '#222222' notitle, \
     '' using 0:2:(sprintf('%.1f', $2)) with labels offset 0,0.8 notitle
unset logscale y
set yrange [*:*]
set xtics norotate

# 2. Wake-up latency.
set title 'Wake-up: post to the waiter''s return (ms, log scale)'
unset xlabel
set ylabel 'fraction of samples'
set logscale x
set key below box
plot dir.'/wake.sem.direct.dat' using 1:2 with steps lw 2 lc rgb '#d9534f' title 'sem, resident poster', \
     dir.'/wake.flock.direct.dat' using 1:2 with steps lw 2 lc rgb '#5cb85c' title 'flock, resident poster', \
     dir.'/wake.sem.spawn.dat' using 1:2 with steps lw 2 dt 2 lc rgb '#d9534f' title 'sem_post spawned (from its start)', \
     dir.'/wake.flock.spawn.dat' using 1:2 with steps lw 2 dt 2 lc rgb '#5cb85c' title 'flock -u spawned (from its start)', \
     dir.'/wake.parallel.spawn.dat' using 1:2 with steps lw 2 lc rgb '#777777' title 'GNU parallel sem'
unset logscale x

# 3. Many waiters.
set title 'Releasing N blocked waiters (post to all reaped)'
set xlabel 'waiters (log)'
set ylabel 'ms (log)'
set logscale xy
set key inside top left box opaque
set xrange [0.7:1500]
plot dir.'/scale.dat' using 1:2:3:4 with yerrorlines lw 2 pt 7 lc rgb '#d9534f' title 'sem', \
     200 with lines dt 2 lc rgb '#999999' title 'target: 200 ms'
unset logscale xy
set xrange [*:*]

# 4. Contention.
set title 'Contention on one slot'
set xlabel 'workers'
set ylabel 'acquisitions per second'
set yrange [0:*]
set key inside bottom right box opaque
colors = '#d9534f #f0ad4e #5cb85c #337ab7 #777777'
plot for [i = 1:words(conts)] dir.'/cont.'.word(conts, i).'.dat' using 1:2:3:4 \
     with yerrorlines lw 2 pt 7 lc rgb word(colors, i) title columnheader(1)
unset multiplot
