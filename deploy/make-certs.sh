#!/bin/bash
# make-certs.sh -- a small CA, the master's server certificate and client certificates, for
# prs-master --tls-cert/--tls-key (and --tls-ca for mutual TLS), and the agents' and CLI's --tls-ca.
#
#   deploy/make-certs.sh OUT_DIR --master-name HOST_OR_IP [--master-name ...] [--client NAME ...]
#
# Writes into OUT_DIR (created 0700):
#   ca.pem ca.key          the CA (kept and reused when both are there already)
#   master.pem master.key  server certificate; its names: every --master-name (an IP address as
#                          an IP name, anything else as a DNS name, "*.example.org" allowed) plus
#                          localhost and 127.0.0.1
#   NAME.pem NAME.key      a client certificate (clientAuth) per --client NAME, for mutual TLS
# Keys are 0600, certificates 0644. EC P-256 keys; the CA lasts --ca-days (3650), the others
# --days (825). Run again to add clients: the CA is reused and a certificate already there is
# kept, never overwritten (the master's only if its names are the same; otherwise it stops and
# says what to remove). Each new certificate is checked with `openssl verify`.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: make-certs.sh OUT_DIR --master-name HOST_OR_IP [--master-name ...] [--client NAME ...]
                     [--days N] [--ca-days N]

  OUT_DIR              folder for the files (created 0700 if missing)
  --master-name NAME   a name agents and clients use to reach the master: a host name, a
                       wildcard such as '*.cluster.example.org', or an IP address. Repeat for
                       each; localhost and 127.0.0.1 are always added. Needed unless OUT_DIR
                       already holds master.pem.
  --client NAME        also make NAME.pem/NAME.key, a client certificate for mutual TLS
                       (prs-master --tls-ca). NAME: letters, digits, '.', '_', '-'.
  --days N             validity of the master and client certificates (default 825)
  --ca-days N          validity of a new CA (default 3650)

Writes ca.pem ca.key master.pem master.key and NAME.pem NAME.key; an existing CA is reused, an
existing certificate is kept, never overwritten.
EOF
}
die() { echo "make-certs: $*" >&2; exit 1; }
indent() { local line; while IFS= read -r line; do echo "    $line"; done; }

[ $# -ge 1 ] || { usage >&2; exit 2; }
case $1 in -h|--help) usage; exit 0;; -*) usage >&2; exit 2;; esac
OUT=$1; shift
MASTER_NAMES=() CLIENTS=() DAYS=825 CA_DAYS=3650
while [ $# -gt 0 ]; do
  case $1 in
    --master-name) [ $# -ge 2 ] || die "--master-name needs a value"; MASTER_NAMES+=("$2"); shift 2;;
    --client) [ $# -ge 2 ] || die "--client needs a value"; CLIENTS+=("$2"); shift 2;;
    --days) [ $# -ge 2 ] || die "--days needs a value"; DAYS=$2; shift 2;;
    --ca-days) [ $# -ge 2 ] || die "--ca-days needs a value"; CA_DAYS=$2; shift 2;;
    -h|--help) usage; exit 0;;
    *) usage >&2; die "unknown argument '$1'";;
  esac
done
[[ $DAYS =~ ^[1-9][0-9]*$ ]] || die "--days: '$DAYS' is not a positive number of days"
[[ $CA_DAYS =~ ^[1-9][0-9]*$ ]] || die "--ca-days: '$CA_DAYS' is not a positive number of days"
command -v openssl >/dev/null || die "openssl is not installed"

is_ipv4() { [[ $1 =~ ^([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})\.([0-9]{1,3})$ ]] &&
  for o in "${BASH_REMATCH[@]:1}"; do [ "$o" -le 255 ] || return 1; done; }
is_ipv6() { [[ $1 == *:* && $1 =~ ^[0-9A-Fa-f:.]+$ ]]; }

# The subjectAltName of the master: the --master-name values, then localhost and 127.0.0.1.
SAN_LIST=()
add_san() { local s; for s in "${SAN_LIST[@]}"; do [ "$s" = "$1" ] && return; done; SAN_LIST+=("$1"); }
for name in "${MASTER_NAMES[@]}"; do
  if is_ipv4 "$name" || is_ipv6 "$name"; then
    add_san "IP:$name"
  elif [[ $name =~ ^[0-9.]+$ ]]; then
    die "--master-name: '$name' is not an IPv4 address"
  elif [[ $name =~ ^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$ ]]; then
    add_san "DNS:$name"
  else
    die "--master-name: '$name' is neither a host name nor an IP address"
  fi
done
add_san "DNS:localhost"
add_san "IP:127.0.0.1"
for c in "${CLIENTS[@]}"; do
  [[ $c =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "--client: '$c' may hold only letters, digits, '.', '_', '-' (not first)"
  case $c in ca|master) die "--client: '$c' is taken by the ${c} certificate; choose another name";; esac
done

[ ${#MASTER_NAMES[@]} -gt 0 ] || [ -e "$OUT/master.pem" ] ||
  { usage >&2; die "give at least one --master-name: the name agents and clients use to reach the master"; }

umask 077
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
TMP=$(mktemp -d "$OUT/.make-certs.XXXXXX")
trap 'rm -rf "$TMP"' EXIT

# sans CERT -> the certificate's subjectAltName entries, one per line, sorted ("IP Address:"
# spelled "IP:" as in the config).
sans() {
  openssl x509 -in "$1" -noout -ext subjectAltName 2>/dev/null | sed 1d | tr ',' '\n' |
    sed -e 's/^ *//' -e 's/^IP Address:/IP:/' | grep -v '^$' | sort
}

# ---------------------------------------------------------------- the CA
if [ -f "$OUT/ca.pem" ] && [ -f "$OUT/ca.key" ]; then
  echo "make-certs: using the existing CA $OUT/ca.pem"
elif [ -e "$OUT/ca.pem" ] || [ -e "$OUT/ca.key" ]; then
  die "$OUT holds only one of ca.pem and ca.key; restore the other or remove both (every certificate it signed must then be made again)"
else
  cat > "$TMP/ca.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = prs CA
[ext]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days "$CA_DAYS" -sha256 \
    -config "$TMP/ca.cnf" -extensions ext -subj "/CN=prs CA $(hostname -s 2>/dev/null || echo) $(date +%Y-%m-%d)" \
    2>"$TMP/err" || { cat "$TMP/err" >&2; die "could not make the CA"; }
  chmod 0600 "$TMP/ca.key"; chmod 0644 "$TMP/ca.pem"
  mv "$TMP/ca.key" "$OUT/ca.key"; mv "$TMP/ca.pem" "$OUT/ca.pem"
  echo "make-certs: made the CA $OUT/ca.pem"
fi

# sign NAME CN EKU [SAN] -> NAME.pem NAME.key in OUT, signed by the CA, checked.
sign() {
  local name=$1 cn=$2 eku=$3 san=${4:-}
  {
    echo "[ext]"
    echo "basicConstraints = critical, CA:FALSE"
    echo "keyUsage = critical, digitalSignature"
    echo "extendedKeyUsage = $eku"
    echo "subjectKeyIdentifier = hash"
    echo "authorityKeyIdentifier = keyid, issuer"
    [ -z "$san" ] || echo "subjectAltName = $san"
  } > "$TMP/$name.ext"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$TMP/$name.key" -out "$TMP/$name.csr" -subj "/CN=$cn" 2>"$TMP/err" \
    || { cat "$TMP/err" >&2; die "could not make the key of $name"; }
  openssl x509 -req -in "$TMP/$name.csr" -CA "$OUT/ca.pem" -CAkey "$OUT/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$DAYS" -sha256 \
    -extfile "$TMP/$name.ext" -extensions ext -out "$TMP/$name.pem" 2>"$TMP/err" \
    || { cat "$TMP/err" >&2; die "could not sign $name"; }
  local purpose=sslserver; [ "$eku" = serverAuth ] || purpose=sslclient
  openssl verify -CAfile "$OUT/ca.pem" -purpose "$purpose" "$TMP/$name.pem" >/dev/null \
    || die "the new $name.pem does not verify against $OUT/ca.pem"
  chmod 0600 "$TMP/$name.key"; chmod 0644 "$TMP/$name.pem"
  mv "$TMP/$name.key" "$OUT/$name.key"; mv "$TMP/$name.pem" "$OUT/$name.pem"
  echo "make-certs: made $OUT/$name.pem"
}

# keep NAME -> 0 when NAME.pem and NAME.key are both there, the certificate the CA's and the key
# its own; dies when only one is there or they do not fit.
keep() {
  local name=$1
  if [ -f "$OUT/$name.pem" ] && [ -f "$OUT/$name.key" ]; then
    openssl verify -CAfile "$OUT/ca.pem" "$OUT/$name.pem" >/dev/null 2>&1 ||
      die "$OUT/$name.pem is not signed by $OUT/ca.pem; remove $name.pem and $name.key to make a new one"
    [ "$(openssl x509 -in "$OUT/$name.pem" -noout -pubkey)" = "$(openssl pkey -in "$OUT/$name.key" -pubout 2>/dev/null)" ] ||
      die "$OUT/$name.key is not the key of $name.pem; remove both to make a new pair"
    return 0
  elif [ -e "$OUT/$name.pem" ] || [ -e "$OUT/$name.key" ]; then
    die "$OUT holds only one of $name.pem and $name.key; remove it to make both again"
  fi
  return 1
}

# ---------------------------------------------------------------- the master
# The names asked for, spelled as openssl prints them (an IPv6 address in full), read back from
# a throwaway certificate.
SAN=$(IFS=,; echo "${SAN_LIST[*]}")
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TMP/probe.key" \
  -out "$TMP/probe.pem" -subj /CN=probe -addext "subjectAltName=$SAN" 2>"$TMP/err" \
  || { cat "$TMP/err" >&2; die "openssl does not take the names $SAN"; }
WANT_SANS=$(sans "$TMP/probe.pem")
if keep master; then
  HAVE_SANS=$(sans "$OUT/master.pem")
  if [ ${#MASTER_NAMES[@]} -gt 0 ] && [ "$WANT_SANS" != "$HAVE_SANS" ]; then
    die "$OUT/master.pem exists with other names:
$(indent <<<"$HAVE_SANS")
  asked for:
$(indent <<<"$WANT_SANS")
  remove $OUT/master.pem and $OUT/master.key and run again (then restart prs-master)"
  fi
  echo "make-certs: keeping $OUT/master.pem (names: $(paste -sd ' ' <<<"$HAVE_SANS"))"
else
  sign master "${MASTER_NAMES[0]}" serverAuth "$SAN"
fi

# ---------------------------------------------------------------- clients
for c in "${CLIENTS[@]}"; do
  if keep "$c"; then
    echo "make-certs: keeping $OUT/$c.pem"
  else
    sign "$c" "$c" clientAuth
  fi
done

# ---------------------------------------------------------------- check and tell
echo
echo "== openssl verify -CAfile $OUT/ca.pem"
for f in master "${CLIENTS[@]}"; do
  (cd "$OUT" && openssl verify -CAfile ca.pem "$f.pem")
done
echo "   master names: $(sans "$OUT/master.pem" | paste -sd ' ')"
cat <<EOF

Files in $OUT (keys 0600: give each only to the account that needs it):
  prs-master --tls-cert $OUT/master.pem --tls-key $OUT/master.key
  prs-agent, prs --tls-ca $OUT/ca.pem        (or PRS_TLS_CA=$OUT/ca.pem)
EOF
if [ ${#CLIENTS[@]} -gt 0 ]; then
  cat <<EOF
Mutual TLS: prs-master --tls-ca $OUT/ca.pem also asks every client for a certificate;
EOF
  for c in "${CLIENTS[@]}"; do
    echo "  prs-agent, prs --tls-cert $OUT/$c.pem --tls-key $OUT/$c.key   (or PRS_TLS_CERT/PRS_TLS_KEY)"
  done
fi
echo "$OUT/ca.key signs new certificates: keep it off the nodes (no prs program reads it)."
