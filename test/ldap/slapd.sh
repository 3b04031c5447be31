#!/bin/sh
# A private slapd for the LDAP tests and benchmark: its own config, database,
# test CA and users under DIR, listening on 127.0.0.1 only (PORT plain and
# StartTLS, TLSPORT LDAPS). Never touches a system slapd.
# usage: slapd.sh DIR PORT TLSPORT   (runs slapd in the foreground; exec'd)
# Users (password <cn>-pw unless said): alice 1234/1235, bob (posixAccount
# without class User) 2345/2345, nogid 4321 (no gidNumber), nouid (no
# uidNumber), root0 (uidNumber 0), dup twice (ou=a and ou=b), bench0..bench63
# 3000+i/3000+i; the service user cn=svc,dc=test with password svc-pw.
# DIR/ca.pem is the CA that signed the server; DIR/other-ca.pem is not.
set -eu
dir=$1 port=$2 tlsport=$3
mkdir -p "$dir/db"
cd "$dir"
[ -f ca.pem ] || {
	openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=nfsv3-test-ca 2>/dev/null
	openssl req -x509 -newkey rsa:2048 -nodes -keyout other-ca.key -out other-ca.pem -days 2 -subj /CN=other-ca 2>/dev/null
	openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr -subj /CN=localhost 2>/dev/null
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >san.ext
	openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 \
		-extfile san.ext 2>/dev/null
	chmod 0644 server.key
}
# The default filter asks for objectClass=User (upstream's Active Directory habit): a class of our own.
cat >user.schema <<'S'
objectclass ( 1.3.6.1.4.1.99999.1.1 NAME 'User' SUP top AUXILIARY )
S
cat >slapd.conf <<C
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/nis.schema
include $dir/user.schema
pidfile $dir/slapd.pid
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCACertificateFile $dir/ca.pem
TLSCertificateFile $dir/server.pem
TLSCertificateKeyFile $dir/server.key
sizelimit unlimited
# Idle connections are dropped, so that the driver's kept ones are seen to go stale.
idletimeout 2
database mdb
maxsize 67108864
suffix "dc=test"
rootdn "cn=admin,dc=test"
rootpw admin-pw
directory $dir/db
access to attrs=userPassword by anonymous auth by self auth by * none
access to * by users read by * none
C
user() { # cn ou classes attrs...
	cn=$1 ou=$2 classes=$3
	shift 3
	printf 'dn: cn=%s,ou=%s,dc=test\n' "$cn" "$ou"
	for c in person $classes; do printf 'objectClass: %s\n' "$c"; done
	printf 'cn: %s\nsn: %s\nuserPassword: %s-pw\n' "$cn" "$cn" "$cn"
	for a in "$@"; do printf '%s\n' "$a"; done
	printf '\n'
}
posix() { # cn ou uid gid [classes]
	user "$1" "$2" "posixAccount ${5:-User}" "uid: $1" "uidNumber: $3" "gidNumber: $4" "homeDirectory: /home/$1"
}
if [ ! -f db/data.mdb ]; then
	{
		printf 'dn: dc=test\nobjectClass: dcObject\nobjectClass: organization\ndc: test\no: test\n\n'
		for ou in people a b; do printf 'dn: ou=%s,dc=test\nobjectClass: organizationalUnit\nou: %s\n\n' $ou $ou; done
		printf 'dn: cn=svc,dc=test\nobjectClass: person\ncn: svc\nsn: svc\nuserPassword: svc-pw\n\n'
		posix alice people 1234 1235
		posix bob people 2345 2345 top
		user nogid people "User extensibleObject" "uidNumber: 4321"
		user nouid people User
		posix root0 people 0 0
		posix dup a 5001 5001
		posix dup b 5002 5002
		i=0
		while [ $i -lt 64 ]; do posix bench$i people $((3000 + i)) $((3000 + i)); i=$((i + 1)); done
	} >data.ldif
	slapadd -q -f slapd.conf -l data.ldif
fi
exec slapd -d 0 -f slapd.conf -h "ldap://127.0.0.1:$port/ ldaps://127.0.0.1:$tlsport/"
