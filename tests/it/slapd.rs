//! A throwaway OpenLDAP server per test (DESIGN §9): slapd.conf and LDIF in
//! a temporary directory, loaded with slapadd, started in the foreground on
//! free ports (ldap:// and ldaps://, with a CA the test generates), killed
//! on drop. Missing slapd is a failure, never a skip: scripts/test.sh
//! installs it.

use std::{
    fmt::Write as _,
    io::{Read, Write},
    net::{Shutdown, TcpListener, TcpStream},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

pub const SUFFIX: &str = "dc=example,dc=org";
pub const PEOPLE: &str = "ou=people,dc=example,dc=org";
pub const BIND_DN: &str = "cn=chorus-sync,ou=apps,dc=example,dc=org";
pub const BIND_PW: &str = "Tr0ub4dor&3-app-secret";
const SLAPD: &str = "/usr/sbin/slapd";
const SLAPADD: &str = "/usr/sbin/slapadd";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// groupOfNames groups and the memberof overlay.
    OpenLdap,
    /// AD attributes (userAccountControl, accountExpires, memberOf from
    /// msuser.schema) and AD's paging limits: no unpaged search over 1000.
    ActiveDirectory,
}

/// One person entry.
#[derive(Debug, Clone, Default)]
pub struct Person {
    pub uid: String,
    pub mail: String,
    pub sn: String,
    pub given: String,
    pub employee: Option<String>,
    pub department: Option<String>,
    /// AD only.
    pub uac: Option<u32>,
    pub account_expires: Option<i64>,
    pub member_of: Vec<String>,
}

impl Person {
    pub fn new(uid: &str, mail: &str) -> Person {
        Person {
            uid: uid.into(),
            mail: mail.into(),
            sn: format!("Nom-{uid}"),
            given: "Test".into(),
            ..Default::default()
        }
    }

    pub fn dn(&self) -> String {
        format!("uid={},{PEOPLE}", self.uid)
    }
}

pub struct Slapd {
    pub dir: tempfile::TempDir,
    child: Child,
    pub port: u16,
    pub tls_port: u16,
}

fn tool(path: &str) -> &str {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: the directory tests need slapd and ldap-utils (scripts/test.sh installs them)"
    );
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a server certificate for 127.0.0.1 signed by it, in `dir`.
pub fn make_ca(dir: &Path, name: &str) -> PathBuf {
    let ca = dir.join(format!("{name}.pem"));
    run(Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args([
            "-nodes",
            "-days",
            "30",
            "-subj",
            &format!("/CN=chorus-sync test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            dir.join(format!("{name}.key")).to_str().unwrap(),
            "-out",
            ca.to_str().unwrap(),
        ]));
    ca
}

pub fn make_server_cert(dir: &Path) {
    let p = |f: &str| dir.join(f).to_str().unwrap().to_string();
    run(Command::new("openssl")
        .args(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"])
        .args(["-subj", "/CN=127.0.0.1", "-keyout", &p("server.key"), "-out", &p("server.csr")]));
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(Command::new("openssl").args(["x509", "-req", "-days", "30"]).args([
        "-in",
        &p("server.csr"),
        "-CA",
        &p("ca.pem"),
        "-CAkey",
        &p("ca.key"),
        "-CAcreateserial",
        "-extfile",
        &p("server.ext"),
        "-out",
        &p("server.pem"),
    ]));
}

impl Slapd {
    /// Loads `people` (and, after start, `groups_ldif` through ldapadd so the
    /// memberof overlay sees them) and starts the server.
    pub fn start(flavor: Flavor, people: &[Person], groups_ldif: &str) -> Slapd {
        Slapd::start_with_data(flavor, &base_ldif(flavor, people), groups_ldif)
    }

    /// Starts a server loaded with `data` (a whole LDIF, suffix dc=example,dc=org).
    pub fn start_with_data(flavor: Flavor, data: &str, groups_ldif: &str) -> Slapd {
        let (slapd, slapadd) = (tool(SLAPD), tool(SLAPADD));
        tool("/usr/bin/ldapadd");
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::create_dir(d.join("db")).unwrap();
        make_ca(d, "ca");
        make_server_cert(d);
        let mut conf = String::new();
        for schema in ["core", "cosine", "inetorgperson", "nis"] {
            writeln!(conf, "include /etc/ldap/schema/{schema}.schema").unwrap();
        }
        if flavor == Flavor::ActiveDirectory {
            let ms = "/etc/ldap/schema/msuser.schema";
            assert!(Path::new(ms).exists(), "{ms} is missing (package slapd)");
            // msuser's `user` class needs a dozen AD-internal attributes; an
            // auxiliary class carries the few a sync reads.
            std::fs::write(
                d.join("test-ad.schema"),
                "objectclass ( 1.3.6.1.4.1.99999.7.1 NAME 'chorusTestAdAccount' AUXILIARY\n\
                 \tMAY ( userAccountControl $ accountExpires $ memberOf $ objectGUID ) )\n",
            )
            .unwrap();
            writeln!(conf, "include {ms}\ninclude {}", d.join("test-ad.schema").display()).unwrap();
        }
        writeln!(conf, "modulepath /usr/lib/ldap\nmoduleload back_mdb").unwrap();
        if flavor == Flavor::OpenLdap {
            writeln!(conf, "moduleload memberof").unwrap();
        }
        writeln!(
            conf,
            "pidfile {dir}/slapd.pid\nTLSCACertificateFile {dir}/ca.pem\nTLSCertificateFile {dir}/server.pem\n\
             TLSCertificateKeyFile {dir}/server.key\n\
             database mdb\nmaxsize 268435456\nsuffix \"{SUFFIX}\"\nrootdn \"cn=admin,{SUFFIX}\"\nrootpw admin\n\
             directory {dir}/db\naccess to attrs=userPassword by anonymous auth by * none\naccess to * by * read",
            dir = d.display()
        )
        .unwrap();
        match flavor {
            Flavor::OpenLdap => writeln!(conf, "overlay memberof").unwrap(),
            Flavor::ActiveDirectory => {
                writeln!(conf, "limits * size.soft=1000 size.hard=1000 size.pr=500 size.prtotal=unlimited").unwrap()
            }
        }
        std::fs::write(d.join("slapd.conf"), conf).unwrap();
        std::fs::write(d.join("data.ldif"), data).unwrap();
        run(Command::new(slapadd).arg("-f").arg(d.join("slapd.conf")).arg("-l").arg(d.join("data.ldif")));

        let (port, tls_port) = (free_port(), free_port());
        let child = Command::new(slapd)
            .arg("-f")
            .arg(d.join("slapd.conf"))
            .args(["-h", &format!("ldap://127.0.0.1:{port}/ ldaps://127.0.0.1:{tls_port}/"), "-d", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("{slapd}: {e}"));
        let mut server = Slapd { dir, child, port, tls_port };
        server.wait_until_up();
        if !groups_ldif.is_empty() {
            let file = server.dir.path().join("groups.ldif");
            std::fs::write(&file, groups_ldif).unwrap();
            run(Command::new("ldapadd")
                .args(["-x", "-H", &server.url(), "-D", &format!("cn=admin,{SUFFIX}"), "-w", "admin", "-f"])
                .arg(&file));
        }
        server
    }

    fn wait_until_up(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("slapd exited at start ({status}); config in {}", self.dir.path().display());
            }
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok()
                && TcpStream::connect(("127.0.0.1", self.tls_port)).is_ok()
            {
                return;
            }
            assert!(Instant::now() < deadline, "slapd did not answer within 15 s");
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }

    pub fn ldaps_url(&self) -> String {
        format!("ldaps://127.0.0.1:{}", self.tls_port)
    }

    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }
}

impl Drop for Slapd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn base_ldif(flavor: Flavor, people: &[Person]) -> String {
    let mut s = format!(
        "dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Example\ndc: example\n\n\
         dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n\n\
         dn: ou=apps,{SUFFIX}\nobjectClass: organizationalUnit\nou: apps\n\n\
         dn: {BIND_DN}\nobjectClass: person\nobjectClass: simpleSecurityObject\ncn: chorus-sync\nsn: app\n\
         userPassword: {BIND_PW}\n\n"
    );
    for p in people {
        writeln!(s, "dn: {}\nobjectClass: inetOrgPerson", p.dn()).unwrap();
        if flavor == Flavor::ActiveDirectory {
            writeln!(s, "objectClass: chorusTestAdAccount").unwrap();
        }
        writeln!(s, "uid: {}\ncn: {} {}\nsn: {}\ngivenName: {}\nmail: {}", p.uid, p.given, p.sn, p.sn, p.given, p.mail)
            .unwrap();
        let opt = |s: &mut String, k: &str, v: Option<String>| {
            if let Some(v) = v {
                writeln!(s, "{k}: {v}").unwrap();
            }
        };
        opt(&mut s, "employeeNumber", p.employee.clone());
        opt(&mut s, "departmentNumber", p.department.clone());
        opt(&mut s, "userAccountControl", p.uac.map(|u| u.to_string()));
        opt(&mut s, "accountExpires", p.account_expires.map(|u| u.to_string()));
        for g in &p.member_of {
            writeln!(s, "memberOf: {g}").unwrap();
        }
        s.push('\n');
    }
    s
}

/// A TCP relay to `target` that cuts every connection once `limit` bytes
/// came back from the server: a directory that goes away mid-read.
pub fn cutting_proxy(target: u16, limit: usize) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", target)) else { return };
            let (mut c_read, mut s_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || {
                let _ = std::io::copy(&mut c_read, &mut s_write);
            });
            let (mut s_read, mut c_write) = (server, client);
            thread::spawn(move || {
                let mut sent = 0;
                let mut buf = [0u8; 8192];
                while sent < limit {
                    match s_read.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            let n = n.min(limit - sent);
                            if c_write.write_all(&buf[..n]).is_err() {
                                break;
                            }
                            sent += n;
                        }
                    }
                }
                let _ = c_write.shutdown(Shutdown::Both);
                let _ = s_read.shutdown(Shutdown::Both);
            });
        }
    });
    port
}
