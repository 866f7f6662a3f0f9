#!/bin/sh
# Snapshot a docker named volume consistently: stop the containers using it,
# snapshot its directory on the host, start them again (also when the
# snapshot fails).
#
#   CAIRN_REPO=/srv/cairn  docker-volume.sh VOLUME [CONTAINER...]
#
# Run as root (the volume's files belong to the container's users). For a
# database volume prefer a dump without downtime, see docs/databases.md.
set -u
CAIRN=${CAIRN:-cairn}
DOCKER=${DOCKER:-docker}
volume=$1
shift

dir=$("$DOCKER" volume inspect --format '{{ .Mountpoint }}' "$volume") || exit 1
[ -d "$dir" ] || { echo "docker-volume.sh: $dir (volume $volume) is not a directory" >&2; exit 1; }

if [ $# -gt 0 ]; then
    "$DOCKER" stop "$@" >/dev/null || exit 1
fi
"$CAIRN" snapshot -q --tag "volume:$volume" "$dir"
status=$?
if [ $# -gt 0 ]; then
    "$DOCKER" start "$@" >/dev/null || status=1
fi
exit "$status"
