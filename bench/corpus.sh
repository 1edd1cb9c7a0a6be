# Sourced by the CPU benchmarks: `kjv_corpus <work dir> <bin dir>` leaves the King James
# Bible (Debian's bible-kjv) at <work>/kjv.txt and an 8000-piece tokenizer trained on it at
# <work>/kjv8k.model, each made once per work dir.
kjv_corpus() {
  if [ ! -s "$1/kjv.txt" ]; then
    bible -f "Gen1:1-Rev22:21" | sed 's/^[^ ]* //' > "$1/kjv.txt"
  fi
  if [ ! -s "$1/kjv8k.model" ]; then
    "$2/llamac" tokenizer train "$1/kjv.txt" --vocab 8000 -o "$1/kjv8k.model" > /dev/null
  fi
}
