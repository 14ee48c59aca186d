#!/bin/sh
# Entry point of the image: the first argument picks the role. Each role is
# exec'd, so node is PID 1 and gets SIGTERM itself (graceful shutdown).
#   api | worker | reconciler     run that role (docker run IMAGE worker)
#   migrate                       create the database if missing, apply migrations, exit
#   admin ARGS...                 the admin CLI (admin users create --id alice --tier pro)
#   anything else                 run as a command (sh, node ...)
set -e
case "$1" in
  api | worker | reconciler)
    role="$1"
    shift
    exec node --import tsx "apps/$role/src/main.ts" "$@"
    ;;
  migrate)
    shift
    exec node --import tsx scripts/migrate.ts "$@"
    ;;
  admin)
    shift
    exec node --import tsx apps/api/src/cli/admin.ts "$@"
    ;;
  *)
    exec "$@"
    ;;
esac
