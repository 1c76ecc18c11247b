#!/bin/bash
# run-hooks.sh DIR: runs the hooks in DIR, in name order, as jupyter/docker-stacks does:
# `*.sh` files are sourced (their exports reach what runs next), other executable files are
# run, anything else is skipped. A failing hook is logged and the next one runs; a sourced
# hook that calls `exit` ends the start, as it would anywhere.
# start.sh sources it for /usr/local/bin/start-notebook.d and before-notebook.d; a child
# image's own scripts may source it for their own folders too.
# Sourced, so its own variables are prefixed (_rh_) to stay out of the hooks' way.

if [ "$#" -ne 1 ] || [ ! -d "$1" ]; then
    echo "run-hooks.sh: give exactly one folder (got: $*)" >&2
    # shellcheck disable=SC2317
    return 1 2>/dev/null || exit 1
fi
_rh_dir=$1
echo "Running hooks in: $_rh_dir as uid: $(id -u) gid: $(id -g)" >&2
for _rh_hook in "$_rh_dir"/*; do
    [ -e "$_rh_hook" ] || continue
    _rh_status=0
    case "$_rh_hook" in
        *.sh)
            echo "Sourcing shell script: $_rh_hook" >&2
            # The caller's `set -e` must not end the start on a failing command in a hook.
            _rh_errexit=${-//[^e]/}
            set +e
            # shellcheck disable=SC1090
            source "$_rh_hook"
            _rh_status=$?
            [ -n "$_rh_errexit" ] && set -e
            ;;
        *)
            if [ -x "$_rh_hook" ]; then
                echo "Running executable: $_rh_hook" >&2
                "$_rh_hook" || _rh_status=$?
            else
                echo "Ignoring non-executable: $_rh_hook" >&2
            fi
            ;;
    esac
    if [ "$_rh_status" -ne 0 ]; then
        echo "$_rh_hook has failed (exit code $_rh_status), continuing execution" >&2
    fi
done
echo "Done running hooks in: $_rh_dir" >&2
unset _rh_dir _rh_hook _rh_status _rh_errexit
