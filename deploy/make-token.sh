#!/bin/bash
# make-token.sh -- a new bearer token for one principal: its hash goes into the master's tokens
# file (prs-master --tokens), the token itself to TOKEN_OUT_FILE or, once, to stdout.
#
#   deploy/make-token.sh NAME ROLES TOKENS_FILE [TOKEN_OUT_FILE]
#
#   NAME            the principal (owner of the jobs it submits): letters, digits, '.', '_',
#                   '@', '-'; not yet in TOKENS_FILE
#   ROLES           comma-separated: submit (submit and manage one's own jobs), read (see every
#                   job and its logs), admin (everything), agent (prs-agent: the AgentService only)
#   TOKENS_FILE     appended to, created 0600 if missing; each line
#                   "sha256:<SHA-256 of the token>  NAME  ROLES", never the token
#   TOKEN_OUT_FILE  written 0600 (must not exist yet): for prs-agent --token-file or
#                   prs --token-file / PRS_TOKEN_FILE. Without it the token is printed to stdout,
#                   once, and everything else goes to stderr: TOKEN=$(make-token.sh ...) works.
# The token is 64 hex digits from `openssl rand -hex 32`. A running master reads the new line
# after `systemctl reload prs-master` or `kill -HUP <its pid>`.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: make-token.sh NAME ROLES TOKENS_FILE [TOKEN_OUT_FILE]

  NAME            principal name: letters, digits, '.', '_', '@', '-'
  ROLES           comma-separated roles: submit, read, admin, agent
  TOKENS_FILE     the master's tokens file (prs-master --tokens); the hash is appended
  TOKEN_OUT_FILE  where the token goes (0600, must not exist); default: printed once to stdout

examples:
  make-token.sh node-agents agent /etc/prs/tokens /etc/prs/agent.token
  make-token.sh alice submit /etc/prs/tokens > alice.token
EOF
}
die() { echo "make-token: $*" >&2; exit 1; }

case ${1:-} in -h|--help) usage; exit 0;; esac
if [ $# -lt 3 ] || [ $# -gt 4 ]; then usage >&2; exit 2; fi
NAME=$1 ROLES=$2 TOKENS=$3 OUT=${4:-}

[[ $NAME =~ ^[A-Za-z0-9._@-]+$ ]] ||
  die "NAME: '$NAME' may hold only letters, digits, '.', '_', '@' and '-'"
# Each role once, in the order given; an unknown one is refused.
IFS=, read -r -a role_list <<<"$ROLES"
ROLES_OUT=''
for r in "${role_list[@]}"; do
  case $r in
    submit|read|admin|agent) ;;
    '') die "ROLES: '$ROLES' has an empty role; give e.g. submit or submit,read" ;;
    *) die "ROLES: unknown role '$r'; the roles are submit, read, admin and agent" ;;
  esac
  case ,$ROLES_OUT, in *,"$r",*) ;; *) ROLES_OUT=${ROLES_OUT:+$ROLES_OUT,}$r ;; esac
done
[ -n "$ROLES_OUT" ] || die "ROLES: none given; give e.g. submit or submit,read"
[ -z "$OUT" ] || [ ! -e "$OUT" ] ||
  die "$OUT exists; a token file is never overwritten: remove it (and revoke its principal's line in $TOKENS) or choose another path"
command -v openssl >/dev/null || die "openssl is not installed"
command -v sha256sum >/dev/null || die "sha256sum is not installed"

umask 077
for f in "$TOKENS" ${OUT:+"$OUT"}; do
  [ -d "$(dirname "$f")" ] || die "no folder $(dirname "$f") for $f; make it first (see deploy/README.md)"
done
if [ ! -e "$TOKENS" ]; then
  printf '# prs-master --tokens: sha256:<SHA-256 of the token>  <principal>  <role>[,<role>...]\n' > "$TOKENS"
  echo "make-token: created $TOKENS (0600)" >&2
fi
if [ ! -f "$TOKENS" ] || [ ! -w "$TOKENS" ]; then die "$TOKENS is not a writable file"; fi

# Hold the tokens file while checking and appending, so two runs cannot add the same name.
exec 9>>"$TOKENS"
if command -v flock >/dev/null; then flock 9; fi
if awk -v n="$NAME" '$1 !~ /^#/ && $2 == n { found = 1 } END { exit !found }' "$TOKENS"; then
  die "principal '$NAME' is already in $TOKENS; to replace its token, delete its line first"
fi

TOKEN=$(openssl rand -hex 32)
HASH=$(printf %s "$TOKEN" | sha256sum | cut -d' ' -f1)
[[ $HASH =~ ^[0-9a-f]{64}$ ]] || die "sha256sum gave '$HASH'"

# The token first: if it cannot be written, the tokens file is left as it was.
if [ -n "$OUT" ]; then
  tmp=$(mktemp "$OUT.XXXXXX") || die "cannot write next to $OUT"
  printf '%s\n' "$TOKEN" > "$tmp"
  chmod 0600 "$tmp"
  mv -n "$tmp" "$OUT" || true
  [ ! -e "$tmp" ] || { rm -f "$tmp"; die "$OUT appeared meanwhile; not overwritten"; }
fi
printf '# %s added %s\nsha256:%s  %s  %s\n' "$NAME" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
  "$HASH" "$NAME" "$ROLES_OUT" >&9
exec 9>&-

if [ -n "$OUT" ]; then
  echo "make-token: the token of '$NAME' ($ROLES_OUT) is in $OUT (0600)" >&2
else
  echo "make-token: the token of '$NAME' ($ROLES_OUT), shown only now:" >&2
  printf '%s\n' "$TOKEN"
fi
if [ -n "$(find "$TOKENS" -perm /o=r)" ]; then
  echo "make-token: warning: $TOKENS is readable by every user; chmod o-r it" >&2
fi
cat >&2 <<EOF
make-token: added '$NAME' to $TOKENS. A running master reads it after
    systemctl reload prs-master        (or: kill -HUP \$(pidof prs-master))
EOF
