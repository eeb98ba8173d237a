# shellcheck shell=bash
# Shared by scripts/run and scripts/test (sourced, not executed).
#
#   ensure_venv runtime   .venv with requirements.txt
#   ensure_venv dev       .venv with requirements-dev.txt (which includes requirements.txt)
#
# .venv lives at the repository root. Installing is skipped when the stamp file records the
# hash of the requirement files that are on disk now; editing either file reinstalls.

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$REPO_ROOT/.venv"
VENV_STAMP="$VENV/.requirements.stamp"

die() {
    echo "error: $*" >&2
    exit 1
}

log() {
    echo "==> $*" >&2
}

_find_python() {
    local candidate
    for candidate in python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1; then
            echo "$candidate"
            return 0
        fi
    done
    return 1
}

_python_is_311() {
    "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null
}

_requirements_hash() {
    # The runtime stamp covers requirements.txt; the dev stamp covers both files.
    case "$1" in
        runtime) sha256sum <"$REPO_ROOT/requirements.txt" | cut -d' ' -f1 ;;
        dev) cat "$REPO_ROOT/requirements.txt" "$REPO_ROOT/requirements-dev.txt" |
            sha256sum | cut -d' ' -f1 ;;
        *) die "ensure_venv: unknown profile '$1' (runtime|dev)" ;;
    esac
}

ensure_venv() {
    local profile="$1" python requirements hash runtime_hash
    case "$profile" in
        runtime) requirements="$REPO_ROOT/requirements.txt" ;;
        dev) requirements="$REPO_ROOT/requirements-dev.txt" ;;
        *) die "ensure_venv: unknown profile '$profile' (runtime|dev)" ;;
    esac

    if [[ ! -x "$VENV/bin/python" ]]; then
        python="$(_find_python)" || die "python3.11 (or python3) not found; install Python 3.11"
        _python_is_311 "$python" ||
            die "$python is Python $("$python" -c 'import platform; print(platform.python_version())'), \
this project needs 3.11 (pyproject.toml requires-python); install python3.11"
        log "creating $VENV with $python"
        "$python" -m venv "$VENV" ||
            die "could not create $VENV (on Debian: apt-get install python3-venv)"
    fi
    _python_is_311 "$VENV/bin/python" ||
        die "$VENV is not a Python 3.11 environment; remove it (rm -rf .venv) and rerun"

    hash="$(_requirements_hash "$profile")"
    if [[ -f "$VENV_STAMP" ]] && grep -qx "$profile $hash" "$VENV_STAMP"; then
        return 0
    fi
    # A dev install also satisfies the runtime profile.
    if [[ "$profile" == runtime && -f "$VENV_STAMP" ]] &&
        grep -qx "dev $(_requirements_hash dev)" "$VENV_STAMP"; then
        return 0
    fi

    log "installing $(basename "$requirements") into .venv"
    local started=$SECONDS
    PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1 \
        "$VENV/bin/python" -m pip install --quiet --require-virtualenv -r "$requirements" ||
        die "pip install -r $(basename "$requirements") failed"
    log "installed in $((SECONDS - started)) s"

    runtime_hash="$(_requirements_hash runtime)"
    {
        echo "runtime $runtime_hash"
        if [[ "$profile" == dev ]]; then
            echo "dev $hash"
        fi
    } >"$VENV_STAMP"
}
