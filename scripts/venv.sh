# Sourced by scripts/demo and scripts/install-deps: makes the project's virtual environment
# (.venv) and installs imagewise into it with the extras named in $1 ("" or "[test]").
# imagewise never installs into the system Python: distributions mark theirs as externally
# managed (PEP 668), and changing it would change the user's own packages.
venv_install() {
  local extras="$1" py="${PYTHON:-python3}"
  if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "imagewise needs Python 3.11 or newer; '$py' is $("$py" --version 2>&1 || echo missing)" >&2
    return 2
  fi
  if [ ! -x .venv/bin/python ] || ! .venv/bin/python -c 'import sys' 2>/dev/null; then
    rm -rf .venv
    if ! "$py" -m venv .venv 2>/tmp/imagewise-venv.$$; then
      # Debian and Ubuntu ship venv's pip bootstrap separately
      if [ "$(id -u)" = 0 ] || command -v sudo >/dev/null 2>&1; then
        local sudo=""; [ "$(id -u)" = 0 ] || sudo=sudo
        $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq \
          --no-install-recommends python3-venv >/dev/null
        rm -rf .venv
        "$py" -m venv .venv
      else
        cat /tmp/imagewise-venv.$$ >&2
        echo "could not create .venv: install your distribution's python3-venv package" >&2
        rm -f /tmp/imagewise-venv.$$
        return 2
      fi
    fi
    rm -f /tmp/imagewise-venv.$$
  fi
  local log
  log=$(mktemp)
  if ! .venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}" >"$log" 2>&1; then
    cat "$log" >&2
    rm -f "$log"
    echo "pip could not install imagewise into .venv (see above)" >&2
    return 2
  fi
  grep -v -E '^(WARNING|DEPRECATION|\[notice\])' "$log" >&2 || true
  rm -f "$log"
  export VIRTUAL_ENV="$PWD/.venv" PATH="$PWD/.venv/bin:$PATH"
}
