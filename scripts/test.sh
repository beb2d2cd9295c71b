#!/usr/bin/env bash
# The whole test suite, on a fresh machine of this kind: installs what is missing
# (Debian packages, a Python venv under target/), builds, runs the Rust tests and the
# Python end-to-end tests, and ends with one "N passed, N failed" line.
set -uo pipefail
cd "$(dirname "$0")/.."
mkdir -p target
rm -f target/pytest.log target/cargo-test.log

# --- system packages -------------------------------------------------------------
missing=()
command -v smbclient  >/dev/null || missing+=(smbclient)
command -v smbtorture >/dev/null || missing+=(samba-testsuite)
command -v fusermount3 >/dev/null || missing+=(fuse3)
# smbtorture smb2.oplock.batch22b and tests/python/test_dead_peer.py drop a client's
# packets with iptables.
command -v iptables   >/dev/null || missing+=(iptables)
if ((${#missing[@]})); then
  echo "== installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null \
    || { echo "apt-get install ${missing[*]} failed"; exit 1; }
fi

# --- Python venv for the end-to-end clients ------------------------------------------
VENV=target/venv
if [[ -f tests/python/requirements.txt ]]; then
  # A venv copied or moved from elsewhere has a dead interpreter path: rebuild it then.
  if ! "$VENV/bin/python" -m pytest --version >/dev/null 2>&1 \
      || ! cmp -s tests/python/requirements.txt $VENV/.requirements; then
    echo "== creating $VENV"
    rm -rf "$VENV"
    python3 -m venv "$VENV" && "$VENV/bin/pip" install -q -r tests/python/requirements.txt \
      && cp tests/python/requirements.txt "$VENV/.requirements" \
      || { echo "pip install failed"; exit 1; }
  fi
fi

# --- Rust ---------------------------------------------------------------------------
echo "== cargo build"
cargo build --workspace --all-targets || { echo "0 passed, 1 failed"; exit 1; }
echo "== cargo test"
cargo test --workspace --no-fail-fast 2>&1 | tee target/cargo-test.log
cargo_rc=${PIPESTATUS[0]}

# --- Python end-to-end --------------------------------------------------------------
py_rc=0
if [[ -d tests/python ]] && compgen -G "tests/python/test_*.py" >/dev/null; then
  echo "== pytest"
  cargo build --release --bin leasefs || py_rc=1
  LEASEFS_BIN="$PWD/target/release/leasefs" "$VENV/bin/python" -m pytest -q tests/python 2>&1 | tee target/pytest.log
  py_rc=${PIPESTATUS[0]}
fi

# --- one summary line -------------------------------------------------------------
passed=$(grep -hoE '^test result: .* ([0-9]+) passed' target/cargo-test.log | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
failed=$(grep -hoE '^test result: .* ([0-9]+) failed' target/cargo-test.log | grep -oE '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
if [[ -f target/pytest.log ]] && [[ -d tests/python ]]; then
  pp=$(tail -n 3 target/pytest.log | grep -oE '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
  pf=$(tail -n 3 target/pytest.log | grep -oE '[0-9]+ (failed|error)' | awk '{s+=$1} END {print s+0}')
  passed=$((passed + pp)); failed=$((failed + pf))
fi
if [[ $cargo_rc -ne 0 || $py_rc -ne 0 ]] && [[ $failed -eq 0 ]]; then failed=1; fi
echo "$passed passed, $failed failed"
[[ $cargo_rc -eq 0 && $py_rc -eq 0 ]]
