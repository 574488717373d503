#!/usr/bin/env bash
# Creates .venv on Python 3.12 and installs exactly the locked dependencies.
# Sourced or run by ./run; safe to run again (it only does what is missing).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
UV_VERSION="0.13.8"

say() { printf 'kestrel setup: %s\n' "$*" >&2; }

is_py312() {
    [ -n "${1:-}" ] && [ -x "$1" ] && "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 12) else 1)' 2>/dev/null
}

# Tries, in order: $KESTREL_PYTHON, python3.12 on PATH, python3 on PATH if it is 3.12,
# pyenv's newest 3.12.x, a uv-managed 3.12. Prints the interpreter path.
find_python312() {
    local candidate
    if [ -n "${KESTREL_PYTHON:-}" ]; then
        is_py312 "$KESTREL_PYTHON" && { echo "$KESTREL_PYTHON"; return 0; }
        say "KESTREL_PYTHON=$KESTREL_PYTHON is not a Python 3.12 interpreter"; return 1
    fi
    for candidate in "$(command -v python3.12 2>/dev/null || true)" "$(command -v python3 2>/dev/null || true)"; do
        # pyenv shims refuse inactive versions, so resolve through pyenv below instead.
        is_py312 "$candidate" && { echo "$candidate"; return 0; }
    done
    if command -v pyenv >/dev/null 2>&1; then
        local version
        for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$' | sort -t. -k3 -n -r); do
            candidate="$(pyenv prefix "$version" 2>/dev/null)/bin/python3.12"
            is_py312 "$candidate" && { echo "$candidate"; return 0; }
        done
    fi
    if command -v uv >/dev/null 2>&1; then
        candidate="$(uv python find 3.12 2>/dev/null || true)"
        is_py312 "$candidate" && { echo "$candidate"; return 0; }
    fi
    return 1
}

if ! is_py312 "$VENV/bin/python"; then
    PY="$(find_python312)" || {
        say "Kestrel needs Python 3.12 and none was found."
        say "Install it (e.g. 'pyenv install 3.12', your OS package 'python3.12', or 'uv python install 3.12')"
        say "or point KESTREL_PYTHON at a python3.12 executable, then run this again."
        exit 1
    }
    say "creating .venv with $PY"
    rm -rf "$VENV"
    "$PY" -m venv "$VENV"
fi

if ! "$VENV/bin/python" -m uv --version 2>/dev/null | grep -q "uv $UV_VERSION"; then
    say "installing uv $UV_VERSION into .venv"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

# --locked: the lockfile is the truth; a fresh machine gets exactly what was tested.
say "syncing locked dependencies"
( cd "$ROOT" && UV_PYTHON="$VENV/bin/python" UV_PROJECT_ENVIRONMENT="$VENV" \
    UV_PYTHON_DOWNLOADS=never "$VENV/bin/python" -m uv sync --locked --quiet )
