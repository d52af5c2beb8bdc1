#!/usr/bin/env bash
# The C scanner and content-tree builder under AddressSanitizer and UndefinedBehaviorSanitizer: builds
# sr2fhir_core.reading._scan and _tree with -fsanitize=address,undefined in a scratch copy of the package, then
# runs their own tests and the differential test (every corpus file, re-encoding and mutation, through both
# scanners and both tree builders) against that build.
# Any sanitizer report aborts the run. Not part of the default test run (it needs gcc and takes minutes).
#
#     benchmarks/scan_sanitizers.sh [pytest arguments...]      e.g. -k corpus_inputs
#
# PYTHON selects the interpreter (default: python3); SR2FHIR_SHARED the folder holding corpus/ (default:
# ../shared beside the checkout, as for the tests).
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
shared="${SR2FHIR_SHARED:-$repo/../shared}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

cp -r "$repo/sr2fhir_core" "$repo/sr2fhir_synth" "$repo/jobs" "$repo/tests" "$repo/setup.py" "$repo/pyproject.toml" \
    "$scratch/"
find "$scratch" -name '*.so' -delete
find "$scratch" -name '__pycache__' -type d -prune -exec rm -rf {} +

flags="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1"
(cd "$scratch" && CFLAGS="$flags" LDFLAGS="-fsanitize=address,undefined" \
    "$python" setup.py --quiet build_ext --inplace 2>&1 | grep -v -i "warn" || true)
ls "$scratch"/sr2fhir_core/reading/_scan*.so "$scratch"/sr2fhir_core/reading/_tree*.so >/dev/null

# The interpreter is not instrumented: the ASan runtime must be loaded first. Python's own allocations are
# not leaks worth reporting here (interned objects live until exit), so leak detection is off; reference
# leaks are what test_no_leaks_on_success_or_failure in tests/test_scan.py and tests/test_tree.py checks.
export LD_PRELOAD="$(gcc -print-file-name=libasan.so)"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
export PYTHONMALLOC=malloc  # every object allocation through ASan's malloc: overruns of bytes values show
export SR2FHIR_SHARED="$shared"
export SR2FHIR_TEST_TIME_SCALE=10  # the differential test's per-input time limits, for the instrumented build
cd "$scratch"
PYTHONPATH="$scratch" "$python" - <<'EOF'
from sr2fhir_core.reading import _scan, _tree, fast_parser, fast_reader

assert fast_parser.SCANNER == "c", "the sanitized scanner build did not load"
assert fast_reader.TREE_BUILDER == "c", "the sanitized tree builder build did not load"
print("sanitized C scanner:", _scan.__file__)
print("sanitized C tree builder:", _tree.__file__)
EOF
PYTHONPATH="$scratch" "$python" -m pytest -q -p no:cacheprovider tests/test_scan.py tests/test_tree.py \
    tests/test_reader_differential.py tests/test_fast_reader.py "$@"
echo "sanitizers: no report"
