#!/bin/sh
# Snapshot an application folder, run the deploy, and put the folder back
# exactly as it was if the deploy fails.
#
#   CAIRN_REPO=/srv/cairn  pre-deploy.sh /srv/app -- ./deploy.sh v1.2
#
# Exit status: the deploy's (0 on success). On failure the folder is restored
# from the pre-deploy snapshot (files the deploy added are deleted) and the
# restore itself keeps a `before-restore` snapshot of the failed state, so even
# the rollback can be undone.
set -eu
CAIRN=${CAIRN:-cairn}
app=$1
shift
[ "${1:-}" = "--" ] && shift

# The id from --json, so the rollback restores exactly this snapshot even if
# other deploys take pre-deploy snapshots meanwhile.
id=$("$CAIRN" snapshot --json --tag pre-deploy -m "before: $*" "$app" |
    sed -n 's/^ *"id": *"\([0-9a-f]\{64\}\)".*/\1/p')
[ -n "$id" ] || { echo "pre-deploy.sh: no snapshot id from cairn" >&2; exit 1; }
echo "pre-deploy snapshot: $id"

status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
    echo "deploy failed (exit $status); restoring $app from $id" >&2
    "$CAIRN" restore "$id" --in-place --delete --yes
fi
exit "$status"
