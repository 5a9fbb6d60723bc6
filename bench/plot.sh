#!/bin/bash
# The plot of a bench result: one row per ratio (bench, metric, variant /
# baseline), a bar from 1.0 to the ratio its goal is judged on (the
# per-round ratio, else the ratio of medians) on a log scale, green where the
# goal is met, red where it is not, grey where there is no goal, and the
# goal as a black diamond (its direction in the row's name).
#
#   bench/plot.sh RESULT.json OUT.png        (bench/report.sh runs it)
set -euo pipefail
IN=$1 PNG=$2
DATA=$(mktemp /tmp/sluice-plot.XXXXXX)
trap 'rm -f "$DATA"' EXIT

# idx, label, ratio (-1: none), goal (-1: none), met (1 met, 0 not, -1
# no goal), goal text, ratio text; tab-separated
jq -r '
[.benches[] | .bench as $b | .ratios[] | {b: $b} + .] | to_entries[] | .key as $i | .value
| [$i, "\(.b) \(.metric)  \(.variant) / \(.baseline)\(if .goal then "  (goal \(.goal.op) \(.goal.value))" else "" end)",
   (.ratio_by_round // .ratio // -1), (.goal.value // -1),
   (if .met == null then -1 elif .met then 1 else 0 end),
   (if .goal then "\(.goal.op)\(.goal.value)" else "" end),
   ((.ratio_by_round // .ratio) as $r | if $r then "\(($r * 100 | round) / 100)x" else "no data" end)]
| map(tostring) | join("\t")' "$IN" >"$DATA"
N=$(wc -l <"$DATA")
[ "$N" -gt 0 ] || { echo "bench/plot.sh: no ratios in $IN" >&2; exit 1; }
read -r LO HI < <(awk -F '\t' '{ for (i = 3; i <= 4; i++) if ($i > 0) { if (!lo || $i < lo) lo = $i; if ($i > hi) hi = $i } }
	END { lo = lo && lo < 1 ? lo : 1; hi = hi > 1 ? hi : 1; print lo / 2, hi * 3 }' "$DATA")
TITLE=$(jq -r '"sluice bench \(.date // "")  \(.commit // "")  kernel \(.kernel // "")\(if .quick then "  QUICK" else "" end)"' "$IN")

gnuplot <<EOF
set terminal pngcairo size 1200,$((140 + 20 * N)) font "DejaVu Sans,10"
set output "$PNG"
set termoption noenhanced
set title "$TITLE"
set datafile separator "\t"
set logscale x 10
set xrange [$LO:$HI]
set yrange [$N - 0.5:-0.5]
set ytics nomirror scale 0
set xtics (0.01, 0.1, 0.2, 0.5, 0.8, 1, 1.3, 2, 3, 5, 10, 100, 1000)
set grid xtics
set xlabel "ratio to the baseline, same run (log scale)"
set key outside top center horizontal
set style fill solid 0.75 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead lc rgb "black" dt 2
lo(r) = r < 1 ? r : 1
hi(r) = r < 1 ? 1 : r
# where a row's text goes: right of the bar and of the goal
right(r, g) = (r > 0 ? hi(r) : 1) > g ? (r > 0 ? hi(r) : 1) : g
plot "$DATA" using (\$5 == 1 && \$3 > 0 ? \$3 : NaN):1:(lo(\$3)):(hi(\$3)):(\$1 - 0.35):(\$1 + 0.35):ytic(2) \
		with boxxyerror lc rgb "#2e9e44" title "goal met", \
	"" using (\$5 == 0 && \$3 > 0 ? \$3 : NaN):1:(lo(\$3)):(hi(\$3)):(\$1 - 0.35):(\$1 + 0.35) \
		with boxxyerror lc rgb "#d62728" title "goal not met", \
	"" using (\$5 == -1 && \$3 > 0 ? \$3 : NaN):1:(lo(\$3)):(hi(\$3)):(\$1 - 0.35):(\$1 + 0.35) \
		with boxxyerror lc rgb "#9a9a9a" title "no goal", \
	"" using (\$4 > 0 ? \$4 : NaN):1 with points pt 13 ps 1.6 lc rgb "black" title "goal", \
	"" using (right(\$3, \$4) * 1.08):1:7 with labels left font ",8" notitle
EOF
