# Sourced by every test/interop/*/setup.sh right after it has made "$cache".
#
# `go test ./...` runs the interop packages in parallel, and on a fresh machine their setup
# scripts would then race: two apt-gets fail on dpkg's lock, two Maven runs share one local
# repository. One lock serialises all installs. A setup script that calls another one passes
# the lock down (the file descriptor is inherited, YARD_INTEROP_LOCKED says it is held), so
# nesting does not deadlock.
if [ -z "${YARD_INTEROP_LOCKED:-}" ]; then
  exec 9>"$cache/install.lock"
  flock 9
  export YARD_INTEROP_LOCKED=1
fi
