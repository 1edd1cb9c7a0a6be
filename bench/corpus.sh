# Sourced by the CPU benchmarks: `kjv_corpus <work dir> <bin dir>` leaves the King James
# Bible (Debian's bible-kjv) at <work>/kjv.txt and an 8000-piece tokenizer trained on it at
# <work>/kjv8k.model, each made once per work dir; `rate <log>` reads a training run's
# throughput.
kjv_corpus() {
  if [ ! -s "$1/kjv.txt" ]; then
    bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$1/kjv.txt"
  fi
  if [ ! -s "$1/kjv8k.model" ]; then
    "$2/llamac" tokenizer train "$1/kjv.txt" --vocab 8000 -o "$1/kjv8k.model" > /dev/null
  fi
}

# The rate of the run's summary line ("... in 0:07: 1.51k tokens/s, ..."), in tokens/s.
rate() {
  sed -n 's/.*: \([0-9.]*\)\([kM]*\) tokens\/s, .*/\1 \2/p' "$1" | tail -1 |
    awk '{ print $1 * ($2 == "k" ? 1e3 : $2 == "M" ? 1e6 : 1) }'
}
