#!/bin/bash
# The ENTRYPOINT of every notebook image (`tini -g -- start.sh`), as in jupyter/docker-stacks:
# whatever command the container runs (the default start-notebook.py, a spawner's
# jupyterhub-singleuser, `id`, `bash`), this script first adapts the notebook user to the
# platform's settings, then runs the command as that user. With no command it runs bash.
#
# Started as root:
#   NB_USER      rename the user `jovyan` (home copied to /home/$NB_USER); NB_USER=root with
#                NB_UID=0 and NB_GID=0 runs the command as root with HOME=/home/root
#   NB_UID       the user's uid (files it owns in its home follow)
#   NB_GID       the user's primary gid (NB_GROUP names a new group; default: $NB_USER)
#   CHOWN_HOME   yes: chown the home folder to NB_UID:NB_GID (CHOWN_HOME_OPTS, e.g. -R)
#   CHOWN_EXTRA  comma-separated paths to chown likewise (CHOWN_EXTRA_OPTS)
#   GRANT_SUDO   yes: passwordless sudo for the user (never granted otherwise)
# Started as another uid without a passwd entry (OpenShift, `--user 1010`): the entry is made,
# named $NB_USER, when /etc/passwd is writable (the image lets group root write it).
# Always:
#   NB_UMASK                  the umask of the command
#   JUPYTER_ENV_VARS_TO_UNSET comma-separated variables removed before the command runs
#   JUPYTER_DOCKER_STACKS_QUIET  set: only warnings and errors are logged
# Hooks (run-hooks.sh): /usr/local/bin/start-notebook.d as the user the container started as,
# then /usr/local/bin/before-notebook.d just before the command (as root when started as root).
set -e

_log() {
    if [[ "$*" == ERROR:* || "$*" == WARNING:* || -z "${JUPYTER_DOCKER_STACKS_QUIET:-}" ]]; then
        echo "start.sh: $*" >&2
    fi
}

is_yes() {
    case "${1:-}" in
        1 | y | yes | Yes | YES | true | True | TRUE) return 0 ;;
        *) return 1 ;;
    esac
}

unset_explicit_env_vars() {
    local name
    if [ -n "${JUPYTER_ENV_VARS_TO_UNSET:-}" ]; then
        for name in ${JUPYTER_ENV_VARS_TO_UNSET//,/ }; do
            _log "unsetting $name (JUPYTER_ENV_VARS_TO_UNSET)"
            unset "$name"
        done
        unset JUPYTER_ENV_VARS_TO_UNSET
    fi
}

if [ $# -eq 0 ]; then
    set -- bash
fi

# start.sh is the ENTRYPOINT: a CMD that names it again (the pre-2023 docker-stacks layout)
# must not apply the settings twice.
if [ "${_START_SH_EXECUTED:-}" = 1 ]; then
    _log "WARNING: start.sh is the ENTRYPOINT already; do not name it in the command"
    exec "$@"
fi
export _START_SH_EXECUTED=1

# shellcheck disable=SC1091
source /usr/local/bin/run-hooks.sh /usr/local/bin/start-notebook.d

# Started as root: make the user what the settings ask, then run the command as that user.
start_as_root() {
    NB_USER=${NB_USER:-jovyan} NB_UID=${NB_UID:-1000} NB_GID=${NB_GID:-100}
    local root_triplet="" path extra
    if [ "$NB_USER" = root ] && [ "$NB_UID" = 0 ] && [ "$NB_GID" = 0 ]; then
        root_triplet=1
    fi
    if ! id -u "$NB_USER" >/dev/null 2>&1; then
        if ! id -u jovyan >/dev/null 2>&1; then
            _log "ERROR: neither jovyan nor $NB_USER exists (was the container restarted with another NB_USER?)"
            exit 1
        fi
        _log "renaming user jovyan to $NB_USER"
        usermod --login "$NB_USER" --home "/home/$NB_USER" jovyan
    fi
    if [ "$NB_UID" != "$(id -u "$NB_USER")" ] || [ "$NB_GID" != "$(id -g "$NB_USER")" ]; then
        _log "setting $NB_USER to uid $NB_UID and gid $NB_GID"
        if [ "$NB_GID" != "$(id -g "$NB_USER")" ]; then
            groupadd --force --non-unique --gid "$NB_GID" "${NB_GROUP:-$NB_USER}"
        fi
        # Staying in `users` keeps the virtual environment (group-writable) writable.
        usermod --non-unique --uid "$NB_UID" --gid "$NB_GID" --append --groups users "$NB_USER"
        chown "$NB_UID:$NB_GID" "/home/$NB_USER" 2>/dev/null || true
    fi
    if [ -n "$root_triplet" ]; then
        sed -i -e 's|^root:\([^:]*:[^:]*:[^:]*:[^:]*\):/root:|root:\1:/home/root:|' /etc/passwd
    fi
    if [ "$NB_USER" != jovyan ]; then
        if [ ! -e "/home/$NB_USER" ]; then
            _log "copying /home/jovyan to /home/$NB_USER"
            mkdir "/home/$NB_USER"
            cp -a ${root_triplet:+--no-preserve=ownership} /home/jovyan/. "/home/$NB_USER/"
        fi
        case "$PWD/" in
            /home/jovyan/*) cd "/home/$NB_USER/${PWD#/home/jovyan}" ;;
        esac
    fi
    if is_yes "${CHOWN_HOME:-}"; then
        _log "chown ${CHOWN_HOME_OPTS:-} $NB_UID:$NB_GID /home/$NB_USER"
        # shellcheck disable=SC2086
        chown ${CHOWN_HOME_OPTS:-} "$NB_UID:$NB_GID" "/home/$NB_USER"
    fi
    if [ -n "${CHOWN_EXTRA:-}" ]; then
        IFS=, read -ra extra <<<"$CHOWN_EXTRA"
        for path in "${extra[@]}"; do
            _log "chown ${CHOWN_EXTRA_OPTS:-} $NB_UID:$NB_GID $path"
            # shellcheck disable=SC2086
            chown ${CHOWN_EXTRA_OPTS:-} "$NB_UID:$NB_GID" "$path"
        done
    fi
    if is_yes "${GRANT_SUDO:-}"; then
        _log "granting $NB_USER passwordless sudo"
        echo "$NB_USER ALL=(ALL) NOPASSWD:ALL" >/etc/sudoers.d/notebook-user
        chmod 0440 /etc/sudoers.d/notebook-user
    else
        rm -f /etc/sudoers.d/notebook-user
    fi
    if [ -n "${NB_UMASK:-}" ]; then
        umask "$NB_UMASK"
    fi
    # shellcheck disable=SC1091
    source /usr/local/bin/run-hooks.sh /usr/local/bin/before-notebook.d
    unset_explicit_env_vars
    if [ -n "$root_triplet" ]; then
        _log "running as root: $*"
        HOME=/home/root exec "$@"
    fi
    _log "running as $NB_USER ($NB_UID:$NB_GID): $*"
    export NB_USER NB_UID NB_GID HOME="/home/$NB_USER" USER="$NB_USER" LOGNAME="$NB_USER"
    exec setpriv --reuid="$NB_UID" --regid="$NB_GID" --init-groups -- "$@"
}

if [ "$(id -u)" = 0 ]; then
    start_as_root "$@"
fi

# Not root: the user cannot be changed. Warn about settings that differ from the image's
# defaults and cannot apply; settings left at the defaults say nothing.
jovyan_uid=$(id -u jovyan 2>/dev/null || true)
jovyan_gid=$(id -g jovyan 2>/dev/null || true)
if ! whoami >/dev/null 2>&1; then
    if [ -w /etc/passwd ]; then
        _log "uid $(id -u) has no passwd entry: adding ${NB_USER:-jovyan} ($(id -u):$(id -g)), home /home/jovyan"
        sed -e 's/^jovyan:/nayvoj:/' /etc/passwd >/tmp/passwd.start
        echo "${NB_USER:-jovyan}:x:$(id -u):$(id -g):,,,:/home/jovyan:/bin/bash" >>/tmp/passwd.start
        cat /tmp/passwd.start >/etc/passwd
        rm -f /tmp/passwd.start
        if [ "${NB_USER:-jovyan}" != jovyan ]; then
            _log "WARNING: the user is ${NB_USER} but its home is /home/jovyan: start as root (--user root) to rename the home folder"
        fi
    else
        _log "WARNING: uid $(id -u) has no passwd entry and /etc/passwd is not writable: start with group 0 (--user $(id -u):0)"
    fi
fi
needs_root() { _log "WARNING: $1 needs the container to start as root (--user root); ignored"; }
if [ -n "${NB_USER:-}" ] && [ "$NB_USER" != jovyan ] && [ "$NB_USER" != "$(id -un 2>/dev/null)" ]; then
    needs_root "NB_USER=$NB_USER"
fi
if [ -n "${NB_UID:-}" ] && [ "$NB_UID" != "$jovyan_uid" ] && [ "$NB_UID" != "$(id -u)" ]; then
    needs_root "NB_UID=$NB_UID"
fi
if [ -n "${NB_GID:-}" ] && [ "$NB_GID" != "$jovyan_gid" ] && [ "$NB_GID" != "$(id -g)" ]; then
    needs_root "NB_GID=$NB_GID"
fi
for setting in CHOWN_HOME CHOWN_EXTRA GRANT_SUDO; do
    if [ -n "${!setting:-}" ]; then needs_root "$setting=${!setting}"; fi
done
if [ ! -w "$HOME" ]; then
    _log "WARNING: no write access to $HOME: start with the group users (--group-add users, or --user $(id -u):100)"
fi
if [ -n "${NB_UMASK:-}" ]; then
    umask "$NB_UMASK"
fi

# shellcheck disable=SC1091
source /usr/local/bin/run-hooks.sh /usr/local/bin/before-notebook.d
unset_explicit_env_vars
_log "running as $(id -un 2>/dev/null || id -u): $*"
exec "$@"
