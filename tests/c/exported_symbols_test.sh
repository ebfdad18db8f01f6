#!/usr/bin/env bash
# libshmring.so exports the public API and nothing else (cmake/libshmring.map): every symbol it
# defines is a C call declared in shmring.h, or C++ in namespace shmring outside shmring::detail
# (but for the detail symbols public inline code uses), or the typeinfo/vtable of such a
# class; every C call shmring.h declares is there; and its SONAME carries MAJOR.MINOR.
set -euo pipefail
lib=$1
header=$2
status=0
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
if ! [[ $soname =~ ^libshmring\.so\.[0-9]+\.[0-9]+$ ]]; then
  echo "SONAME '$soname' is not libshmring.so.MAJOR.MINOR"; status=1
fi
declared=$(sed 's:/\*.*\*/::g' "$header" | grep -o '\bshmring_[a-z0-9_]*[[:space:]]*(' | tr -d ' (' | sort -u)
exported=$(nm -D --defined-only "$lib" | awk '{print $3}' | sed 's/@.*//' | sort -u)
for f in $declared; do
  grep -qx "$f" <<< "$exported" || { echo "declared in shmring.h but not exported: $f"; status=1; }
done
unexpected=$(nm -DC --defined-only "$lib" | sed -E 's/^[0-9a-f]+ [A-Za-z] //; s/@@?SHMRING_.*//' | sort -u |
  grep -Ev '^SHMRING_[0-9.]+$' |
  grep -Ev '^shmring_[a-z0-9_]+$' |
  grep -Ev '^(typeinfo for |typeinfo name for |vtable for )?shmring::' |
  cat || true)
detail=$(nm -DC --defined-only "$lib" | sed -E 's/^[0-9a-f]+ [A-Za-z] //; s/@@?SHMRING_.*//' |
  grep 'shmring::detail::' | grep -Ev '^shmring::detail::(Lease::|ServiceHandle::|g_fork_generation$)' |
  grep -Ev '^shmring::[A-Za-z]+::[A-Za-z]+\(std::unique_ptr<shmring::detail::Endpoint' || true)
c_extra=$(grep -E '^shmring_' <<< "$exported" | grep -vxF "$declared" || true)
if [ -n "$unexpected" ]; then echo "exported, not the public API:"; echo "$unexpected" | head -20; status=1; fi
if [ -n "$detail" ]; then echo "shmring::detail internals exported:"; echo "$detail" | head -20; status=1; fi
if [ -n "$c_extra" ]; then echo "C symbols exported but not declared in shmring.h:"; echo "$c_extra"; status=1; fi
total=$(wc -l <<< "$exported")
echo "$soname: $total symbols exported, $(wc -w <<< "$declared") C calls declared"
exit $status
