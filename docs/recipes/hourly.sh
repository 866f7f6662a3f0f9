#!/bin/sh
# Snapshot some paths and apply the stored retention policy: the job to run
# from cron or a systemd timer.
#
#   CAIRN_REPO=/srv/cairn  hourly.sh /srv/app /etc/app
#
# Set the policy once first: cairn policy set --keep-hourly 24 --keep-daily 7 ...
# Exit status: cairn's (0 ok; 3 snapshot taken but some files unreadable;
# anything else: nothing new was recorded). Output only on trouble, so cron
# mails only then.
set -u
CAIRN=${CAIRN:-cairn}
TAG=${CAIRN_TAG:-hourly}

"$CAIRN" snapshot -q --tag "$TAG" "$@"
status=$?
# 3 means the snapshot exists but named some unreadable files on stderr:
# retention still runs, and the 3 is passed on so the warning is not lost.
if [ "$status" -ne 0 ] && [ "$status" -ne 3 ]; then
    echo "hourly.sh: snapshot failed (exit $status); retention skipped" >&2
    exit "$status"
fi
"$CAIRN" forget -q --policy --gc || exit $?
exit "$status"
