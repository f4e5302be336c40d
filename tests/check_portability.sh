#!/usr/bin/env bash
# Re-execute solution notebooks as other machines would and compare their outputs with nbval:
# other OpenBLAS kernels, numpy's ufuncs without AVX-512 or without AVX2 (the SIMD paths of
# exp, log and tanh round differently), and one BLAS thread. For authors, before committing a
# chapter (docs/authoring.md, "Outputs that hold on every machine"); never part of CI, which runs
# the machine's defaults.
#   tests/check_portability.sh [solutions/NN_slug.ipynb ...]     (default: every solution)
set -u
cd "$(dirname "$0")/.."
py=.venv/bin/python
[ -x "$py" ] || { echo "run python3 start.py test once first (it creates .venv)"; exit 2; }
notebooks=("$@")
[ ${#notebooks[@]} -gt 0 ] || notebooks=(solutions/*.ipynb)
variants=(
  "OPENBLAS_CORETYPE=Haswell"
  "OPENBLAS_CORETYPE=Sandybridge"
  "NPY_DISABLE_CPU_FEATURES=X86_V4 AVX512_ICL AVX512_SPR"
  "NPY_DISABLE_CPU_FEATURES=X86_V3 X86_V4 AVX512_ICL AVX512_SPR"
  "OPENBLAS_NUM_THREADS=1"
)
status=0
for v in "${variants[@]}"; do
  echo "== $v"
  out=$(env "$v" PYDEVD_DISABLE_FILE_VALIDATION=1 "$py" -m pytest -q -p no:cacheprovider --nbval \
        --nbval-sanitize-with tests/nbval_sanitize.cfg --nbval-cell-timeout 300 "${notebooks[@]}" 2>&1)
  rc=$?
  printf '%s\n' "$out" | grep -E "^(FAILED|ERROR)|[0-9]+ (passed|failed)"
  [ $rc -eq 0 ] || status=1
done
[ $status -eq 0 ] && echo "the outputs held under every variant" || echo "some outputs differ: see docs/authoring.md"
exit $status
