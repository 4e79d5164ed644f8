#!/usr/bin/env bash
# One-shot GPU check for recforge: build with CUDA, run the GPU tests, run the GPU benchmarks,
# write a short report. Meant for a borrowed GPU machine and a few minutes of its time:
#
#     bash benchmarks/gpu_check.sh            # from the repository root (or anywhere)
#
# Needs: nvcc, a C++17 compiler, cmake, pybind11, scikit-build-core, numpy, scipy, pytest,
# hypothesis (torch and cupy optional: they are the peers of the benchmarks). No network: the
# package is installed with --no-build-isolation --no-deps. Every step runs under `timeout`,
# the whole script stays under TOTAL_BUDGET seconds (default 570) and never waits on input.
# Report: $OUT/gpu_report.txt when $OUT is set, else benchmarks/results/gpu_report.txt; full
# logs of every step next to it (gpu_logs/). Exit status: 0 when build, tests and benchmarks
# all succeeded.
#
# Knobs (environment): RECFORGE_CUDA_ARCHITECTURES (default 90: one architecture builds fast),
# TOTAL_BUDGET, T_BUILD, T_TESTS, T_BENCH_* (seconds), BENCH_SIZES (full|quick|tiny),
# SKIP_BUILD=1 (use the recforge already installed), BENCH_SUITES=1 (also run the pytest-benchmark
# kernel suites at size small; needs pytest-benchmark).
set -u -o pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
START=$(date +%s)
TOTAL_BUDGET=${TOTAL_BUDGET:-570}
DEST=${OUT:-$ROOT/benchmarks/results}
LOGS="$DEST/gpu_logs"
mkdir -p "$LOGS"
REPORT="$DEST/gpu_report.txt"
SUMMARY="$LOGS/summary.txt"
: > "$SUMMARY"
PY=${PYTHON:-python3}
export RECFORGE_CUDA_ARCHITECTURES=${RECFORGE_CUDA_ARCHITECTURES:-90}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc 2>/dev/null || echo 4)}
export PYTHONUNBUFFERED=1
export PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_BREAK_SYSTEM_PACKAGES=1  # no prompts; PEP 668 system Pythons
if [ -z "${RECFORGE_DATA_DIR:-}" ] && [ -d "$ROOT/../shared/data" ]; then
  export RECFORGE_DATA_DIR="$ROOT/../shared/data"
fi
unset CI  # missing datasets skip instead of failing on a borrowed machine
FAILED=0

elapsed() { echo $(( $(date +%s) - START )); }
remaining() { echo $(( TOTAL_BUDGET - $(elapsed) )); }

# step NAME SECONDS COMMAND...: runs COMMAND under timeout (capped by the time left), logs it,
# records "NAME rc seconds" in the summary. Never aborts the script.
step() {
  local name=$1 limit=$2
  shift 2
  local left
  left=$(remaining)
  if [ "$left" -le 15 ]; then
    echo "$name SKIPPED (time budget spent)" | tee -a "$SUMMARY"
    FAILED=1
    return 1
  fi
  [ "$limit" -gt $((left - 10)) ] && limit=$((left - 10))
  echo "== $name (limit ${limit}s) :: $*"
  local t0=$(date +%s) rc
  timeout -k 10 "$limit" "$@" > "$LOGS/$name.log" 2>&1
  rc=$?
  local dt=$(( $(date +%s) - t0 ))
  local note=""
  [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ] && note=" TIMEOUT"
  echo "$name rc=$rc ${dt}s$note" | tee -a "$SUMMARY"
  tail -n 5 "$LOGS/$name.log" | sed 's/^/    /'
  [ "$rc" -ne 0 ] && FAILED=1
  return "$rc"
}

echo "recforge GPU check, $(date -u '+%Y-%m-%d %H:%M:%S UTC'), budget ${TOTAL_BUDGET}s, logs in $LOGS"

step environment 60 bash -c "
  echo '--- git'; git -C '$ROOT' log -1 --oneline 2>/dev/null || echo 'not a git checkout'
  echo '--- nvidia-smi'; timeout 20 nvidia-smi -L; timeout 20 nvidia-smi || echo 'nvidia-smi failed'
  echo '--- nvcc'; nvcc --version || echo 'nvcc not on PATH'
  echo '--- cmake'; cmake --version | head -1 || echo 'cmake not on PATH'
  echo '--- python'; $PY - <<'PYEOF'
import importlib, sys
print(sys.version.split()[0])
for name in ('numpy', 'scipy', 'pybind11', 'scikit_build_core', 'pytest', 'hypothesis', 'torch', 'cupy'):
    try:
        mod = importlib.import_module(name)
        print(f'{name} {getattr(mod, \"__version__\", \"?\")}')
    except Exception as exc:
        print(f'{name} MISSING ({type(exc).__name__}: {exc})')
try:
    import torch
    print('torch cuda:', torch.version.cuda, 'available:', torch.cuda.is_available())
except Exception:
    pass
PYEOF
"

if [ "${SKIP_BUILD:-0}" != "1" ]; then
  step build "${T_BUILD:-300}" "$PY" -m pip install --no-build-isolation --no-deps -v "$ROOT"
  if ! grep -q "_cuda" "$LOGS/build.log"; then
    echo "build: recforge._cuda was NOT built (no CUDA toolkit found by CMake?)" | tee -a "$SUMMARY"
    FAILED=1
  fi
fi

# Outside the source tree so the installed package (with _core/_cuda) is what gets imported.
step info 60 bash -c "cd /tmp && $PY -m recforge info && $PY -c 'import recforge._cuda as c; print(c.device_info())'"

# The check is about the GPU: tests that all skipped because CUDA is unusable count as a failure.
gpu_tests_ran() {
  if grep -q "CUDA is not usable here" "$LOGS/tests.log" 2>/dev/null; then
    echo "tests: the GPU tests were SKIPPED because CUDA is not usable (see info.log)" | tee -a "$SUMMARY"
    FAILED=1
  fi
}
step tests "${T_TESTS:-180}" "$PY" -m pytest -m gpu -v -rs -p no:cacheprovider --durations=15 \
  --continue-on-collection-errors "$ROOT/tests"
gpu_tests_ran

# Benchmarks: a tiny run of every code path first, then the full sizes one section at a time
# (each in its own process and time limit, so one slow section cannot starve the others).
step bench_tiny 75 "$PY" "$ROOT/benchmarks/bench_gpu.py" --sizes tiny --repeat 1
SIZES=${BENCH_SIZES:-full}
# propagate first: it generates (and caches) the 20M matrix that similarity reuses.
step bench_propagate "${T_BENCH_PROPAGATE:-150}" "$PY" "$ROOT/benchmarks/bench_gpu.py" --sizes "$SIZES" \
  --only propagate --json "$LOGS/bench_propagate.json"
step bench_similarity "${T_BENCH_SIMILARITY:-150}" "$PY" "$ROOT/benchmarks/bench_gpu.py" --sizes "$SIZES" \
  --only similarity --repeat 2 --json "$LOGS/bench_similarity.json"
step bench_dense "${T_BENCH_DENSE:-150}" "$PY" "$ROOT/benchmarks/bench_gpu.py" --sizes "$SIZES" \
  --only dense --repeat 2 --json "$LOGS/bench_dense.json"
# Optional (BENCH_SUITES=1, needs pytest-benchmark): the pytest-benchmark suites' kernel groups at
# size small, CUDA cases included, as JSON (compare with pytest-benchmark compare / --benchmark-compare).
if [ "${BENCH_SUITES:-0}" = "1" ]; then
  step bench_suites "${T_BENCH_SUITES:-150}" "$PY" -m pytest "$ROOT/benchmarks/bench_similarity.py" \
    "$ROOT/benchmarks/bench_dense_topk.py" "$ROOT/benchmarks/bench_propagate.py" -k small --benchmark-only \
    -p no:cacheprovider --benchmark-json "$LOGS/bench_suites.json"
fi

{
  echo "recforge GPU check report ($(date -u '+%Y-%m-%d %H:%M:%S UTC'), $(elapsed)s of ${TOTAL_BUDGET}s)"
  echo "commit: $(git -C "$ROOT" log -1 --oneline 2>/dev/null || echo unknown)"
  grep -m2 -E "^GPU [0-9]+:" "$LOGS/environment.log" 2>/dev/null || true
  echo
  echo "== steps (rc 0 = ok, 124/137 = timeout)"
  cat "$SUMMARY"
  echo
  echo "== device"
  grep -E "^backend cuda|devices|driver_version|runtime_version|compiled_architectures" "$LOGS/info.log" 2>/dev/null | head -8
  echo
  echo "== GPU tests"
  grep -E "^(FAILED|ERROR)|passed|failed|skipped|deselected|error" "$LOGS/tests.log" 2>/dev/null | tail -25
  echo
  echo "== benchmarks"
  for s in propagate similarity dense; do
    [ -f "$LOGS/bench_$s.log" ] && grep -v -E "^\s*$" "$LOGS/bench_$s.log" | grep -v -E "^device|^driver" | head -30
  done
  echo
  if [ -f "$LOGS/build.log" ] && ! grep -q "^build rc=0 " "$SUMMARY"; then
    echo "== build errors"
    grep -n -E "error|Error|FAILED" "$LOGS/build.log" | head -40
    echo
  fi
  if [ "$FAILED" -ne 0 ]; then
    echo "== tails of failed steps"
    while read -r line; do
      name=${line%% *}
      case "$line" in *"rc=0 "*) continue ;; esac
      [ -f "$LOGS/$name.log" ] && { echo "--- $name"; tail -n 40 "$LOGS/$name.log"; }
    done < "$SUMMARY"
  fi
} > "$REPORT" 2>&1

echo
cat "$REPORT"
echo
echo "report: $REPORT"
exit "$FAILED"
