#!/bin/bash
# The start script of every notebook image (the jupyter/docker-stacks conventions).
#
# Started as root, it adapts the notebook user to the platform's settings, then runs the
# command as that user:
#   NB_USER      rename the user `jovyan` (home copied to /home/$NB_USER)
#   NB_UID       the user's uid (files in its home follow)
#   NB_GID       the user's primary gid (NB_GROUP names a new group; default: $NB_USER)
#   CHOWN_HOME   yes: chown the home folder to NB_UID:NB_GID (CHOWN_HOME_OPTS, e.g. -R)
#   CHOWN_EXTRA  comma-separated paths to chown likewise (CHOWN_EXTRA_OPTS)
#   GRANT_SUDO   yes: passwordless sudo for the user (never granted otherwise)
# Always:
#   NB_UMASK     the umask of the command
# Hooks: files in /usr/local/bin/start-notebook.d run first, files in
# /usr/local/bin/before-notebook.d run just before the command; `*.sh` files are sourced (they
# may export variables), other executable files are run; a failing hook stops the start.
set -e

log() { echo "start.sh: $*" >&2; }

is_yes() {
    case "${1:-}" in
        1 | y | yes | Yes | YES | true | True | TRUE) return 0 ;;
        *) return 1 ;;
    esac
}

run_hooks() {
    local dir=$1 hook
    [ -d "$dir" ] || return 0
    for hook in "$dir"/*; do
        [ -e "$hook" ] || continue
        case "$hook" in
            *.sh)
                log "sourcing hook $hook"
                # shellcheck disable=SC1090
                source "$hook"
                ;;
            *)
                if [ -x "$hook" ]; then
                    log "running hook $hook"
                    "$hook" || { log "hook $hook failed (exit code $?)"; exit 1; }
                else
                    log "ignoring $hook: neither a .sh file nor executable"
                fi
                ;;
        esac
    done
}

if [ $# -eq 0 ]; then
    set -- start-notebook.sh
fi

run_hooks /usr/local/bin/start-notebook.d

if [ "$(id -u)" = 0 ]; then
    NB_USER=${NB_USER:-jovyan}
    NB_UID=${NB_UID:-1000}
    NB_GID=${NB_GID:-100}

    if [ "$NB_USER" != jovyan ] && ! id -u "$NB_USER" >/dev/null 2>&1; then
        log "renaming user jovyan to $NB_USER"
        if [ ! -e "/home/$NB_USER" ]; then
            mkdir "/home/$NB_USER"
            cp -a /home/jovyan/. "/home/$NB_USER/"
        fi
        usermod --login "$NB_USER" --home "/home/$NB_USER" jovyan
        case "$PWD/" in
            /home/jovyan/*) cd "/home/$NB_USER/${PWD#/home/jovyan}" ;;
        esac
    fi

    if [ "$NB_UID" != "$(id -u "$NB_USER")" ] || [ "$NB_GID" != "$(id -g "$NB_USER")" ]; then
        log "setting $NB_USER to uid $NB_UID and gid $NB_GID"
        if ! getent group "$NB_GID" >/dev/null; then
            groupadd --gid "$NB_GID" "${NB_GROUP:-$NB_USER}"
        fi
        # Staying in `users` keeps the virtual environment (group-writable) writable.
        usermod --uid "$NB_UID" --gid "$NB_GID" --append --groups users "$NB_USER"
        chown "$NB_UID:$NB_GID" "/home/$NB_USER"
    fi

    if is_yes "${CHOWN_HOME:-}"; then
        log "chown ${CHOWN_HOME_OPTS:-} $NB_UID:$NB_GID /home/$NB_USER"
        # shellcheck disable=SC2086
        chown ${CHOWN_HOME_OPTS:-} "$NB_UID:$NB_GID" "/home/$NB_USER"
    fi
    if [ -n "${CHOWN_EXTRA:-}" ]; then
        IFS=, read -ra extra <<<"$CHOWN_EXTRA"
        for path in "${extra[@]}"; do
            log "chown ${CHOWN_EXTRA_OPTS:-} $NB_UID:$NB_GID $path"
            # shellcheck disable=SC2086
            chown ${CHOWN_EXTRA_OPTS:-} "$NB_UID:$NB_GID" "$path"
        done
    fi

    if is_yes "${GRANT_SUDO:-}"; then
        log "granting $NB_USER passwordless sudo"
        echo "$NB_USER ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/notebook-user
        chmod 0440 /etc/sudoers.d/notebook-user
    else
        rm -f /etc/sudoers.d/notebook-user
    fi

    if [ -n "${NB_UMASK:-}" ]; then
        umask "$NB_UMASK"
    fi
    run_hooks /usr/local/bin/before-notebook.d
    log "running as $NB_USER ($NB_UID:$NB_GID): $*"
    export NB_USER NB_UID NB_GID HOME="/home/$NB_USER" USER="$NB_USER" LOGNAME="$NB_USER"
    exec setpriv --reuid="$NB_UID" --regid="$NB_GID" --init-groups -- "$@"
fi

# Not root: the user cannot be changed; say so rather than ignore it silently.
ignored() { log "warning: $1 needs the container to start as root (--user root); ignored"; }
if [ -n "${NB_USER:-}" ] && [ "$NB_USER" != "$(id -un 2>/dev/null)" ]; then ignored "NB_USER=$NB_USER"; fi
if [ -n "${NB_UID:-}" ] && [ "$NB_UID" != "$(id -u)" ]; then ignored "NB_UID=$NB_UID"; fi
if [ -n "${NB_GID:-}" ] && [ "$NB_GID" != "$(id -g)" ]; then ignored "NB_GID=$NB_GID"; fi
for setting in CHOWN_HOME CHOWN_EXTRA GRANT_SUDO; do
    if [ -n "${!setting:-}" ]; then ignored "$setting=${!setting}"; fi
done
if [ -n "${NB_UMASK:-}" ]; then
    umask "$NB_UMASK"
fi
if ! getent passwd "$(id -u)" >/dev/null; then
    log "warning: uid $(id -u) has no passwd entry; HOME is $HOME"
fi
run_hooks /usr/local/bin/before-notebook.d
exec "$@"
