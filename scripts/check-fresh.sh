#!/usr/bin/env bash
# Fresh-machine check: every system path and Python module that the code, tests and benchmarks read must come from a
# Debian package that the README's install line installs (directly or as a dependency), and the README and .ci/run
# must install the same packages. A path or module that only exists because someone installed it by hand fails here,
# before it fails CI on the next clean machine.
#   bash scripts/check-fresh.sh            (run by .ci/run after the install)
set -euo pipefail
cd "$(dirname "$0")/.."

fail=0
err() { echo "check-fresh: $*" >&2; fail=1; }

# The packages of an `apt-get install ...` line (flags dropped, up to the first && or end of line).
packages_of() { sed -nE 's/.*apt-get install (-[^ ]+ )*([^&>]*).*/\2/p' | tr ' ' '\n' | grep -vE '^(-.*)?$' | sort -u; }
ci=$(grep -E 'apt-get install' .ci/run | packages_of)
readme=$(grep -E 'apt-get install' README.md | head -1 | packages_of)
if [ "$ci" != "$readme" ]; then
  err "the README's install line and .ci/run install different packages:"
  diff <(echo "$readme") <(echo "$ci") | sed 's/^</  README only:/; s/^>/  .ci\/run only:/' | grep only >&2 || true
fi

# What the install line brings: the packages and their dependencies, recursively.
closure=$(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances $ci 2>/dev/null \
  | sed -nE 's/^ *(PreDepends|Depends): <?([^ >:]+).*/\2/p; s/^([a-z0-9][^ :]*)$/\1/p' | sort -u)
# On every fresh machine of this kind before any install: Node.js (its headers build the addon) and Debian's base.
base="nodejs libc6 libc-bin"
provided() { local p=$1; grep -qxF "$p" <<<"$closure" || grep -qw -- "$p" <<<"$base"; }

# Paths named in the code that are not read as system files, each with the reason.
# Python modules that only the offline fixture generator imports, from the official sources it is given on PYTHONPATH.
not_imported=' dino_vit dinov2 '

declare -A not_read=(
  ['/etc/data.pkl']='a hostile zip entry name in a checkpoint robustness test'
  ['/usr/include/dnnl.hpp']='one of the two oneDNN header locations the native build probes'
  ['/usr/share/nodejs/node-gyp/bin/node-gyp.js']="Debian's node-gyp, used when present; npm's own node-gyp otherwise"
)

echo "system paths read by src/ test/ bench/ scripts/:"
paths=$(grep -rhoE "['\"\`](/usr|/etc|/opt|/lib)/[A-Za-z0-9_./+-]+" src test bench scripts native/binding.gyp | cut -c2- | sort -u)
for p in $paths; do
  if [ -n "${not_read[$p]:-}" ]; then echo "  $p: not read (${not_read[$p]})"; continue; fi
  if [ ! -e "$p" ]; then err "$p is read by the code but missing: add its Debian package to the install line"; continue; fi
  owner=$(dpkg -S "$(readlink -f "$p")" 2>/dev/null | head -1 | cut -d: -f1 || true)
  [ -z "$owner" ] && owner=$(dpkg -S "$p" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if [ -z "$owner" ]; then err "$p belongs to no Debian package (installed by hand?)"; continue; fi
  if provided "$owner"; then echo "  $p: $owner"; else err "$p comes from $owner, which the install line does not install"; fi
done

echo "Python modules imported by bench/ and test/ (run with /usr/bin/python3):"
mods=$(grep -rhoE '^\s*(import|from) [A-Za-z_][A-Za-z0-9_]*' --include='*.py' bench test | awk '{print $2}' | sort -u)
for m in $mods; do
  [ -e "bench/$m.py" ] && continue # our own helper modules
  [[ "$not_imported" == *" $m "* ]] && { echo "  $m: official source for test/models/make_torch_reference.py (not run by the tests)"; continue; }
  file=$(/usr/bin/python3 -c "import $m, sys; print(getattr($m, '__file__', None) or 'builtin')" 2>/dev/null || true)
  if [ -z "$file" ]; then err "python module '$m' cannot be imported by /usr/bin/python3: add its python3-* package to the install line"; continue; fi
  case "$file" in builtin|/usr/lib/python3.[0-9]*/*) continue ;; esac # the standard library
  owner=$(dpkg -S "$file" 2>/dev/null | head -1 | cut -d: -f1 || true)
  if [ -z "$owner" ]; then err "python module '$m' ($file) belongs to no Debian package (pip-installed?)"; continue; fi
  if provided "$owner"; then echo "  $m: $owner"; else err "python module '$m' comes from $owner, which the install line does not install"; fi
done

if [ "$fail" -ne 0 ]; then echo "check-fresh: FAILED (fix the install line in README.md and .ci/run)" >&2; exit 1; fi
echo "check-fresh: every system path and module the code reads comes from the install line"
