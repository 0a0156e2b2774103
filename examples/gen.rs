//! Benchmark data generator: a realistic HR export of any size, the portal's
//! export of current attachments that differs from it by a known churn, the
//! configuration that reads them, and the same people as an LDIF for slapd.
//!
//! ```text
//! cargo run --release --example gen -- --rows 1000000 --out target/bench/data
//! ```
//!
//! Deterministic: the same arguments give the same bytes. `expected.json`
//! holds the counts a `plan` must find (the bench test checks them).

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use chorus_sync::domain::Siret;
use clap::Parser;
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};

#[derive(Parser)]
#[command(about = "Generates HR files, a portal export, a config and an LDIF for the benchmarks")]
struct Args {
    /// Rows of the HR file (people in the directory).
    #[arg(long, default_value_t = 10_000)]
    rows: usize,
    /// Output directory (created).
    #[arg(long)]
    out: PathBuf,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Fraction of rows that differ from the portal, split evenly between
    /// newcomers, leavers, movers, rights changes and absentees.
    #[arg(long, default_value_t = 0.05)]
    churn: f64,
    /// Fraction of bad rows (an unreadable e-mail or an unknown service).
    #[arg(long, default_value_t = 0.001)]
    bad: f64,
    /// Number of structures (establishments) the rows are spread over.
    #[arg(long, default_value_t = 8)]
    structures: usize,
    /// Files to write, comma-separated: xlsx, csv, csv1252, ods, xls, ldif.
    /// ods and xls have no Rust writer: they are written as `hr-for-ods.csv`
    /// and converted by bench/convert.py.
    #[arg(long, value_delimiter = ',', default_value = "xlsx,csv")]
    formats: Vec<String>,
}

const FIRST: &[&str] = &[
    "Marie",
    "Jean",
    "Élodie",
    "François",
    "Hélène",
    "Jérôme",
    "Chloé",
    "Benoît",
    "Cécile",
    "Loïc",
    "Anaïs",
    "Noël",
    "Inès",
    "Gaël",
    "Zoé",
    "Raphaël",
    "Léa",
    "Théo",
    "Maëlle",
    "Stéphane",
    "Agnès",
    "Aurélien",
    "Béatrice",
    "Clément",
    "Océane",
    "Frédéric",
    "Joël",
    "Mégane",
    "Rémi",
    "Séverine",
    "Thérèse",
    "Valérie",
    "Pierre",
    "Sophie",
    "Lucas",
    "Camille",
    "Nicolas",
    "Julie",
    "Éric",
    "Amélie",
];
const LAST: &[&str] = &[
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Lefebvre",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martínez",
    "Légaré",
    "Bézier",
    "Chaumié",
    "Crétin",
    "Desbiens",
    "Gagné",
    "Hébert",
    "Lévêque",
    "Pâquet",
    "Rivière",
    "Séguin",
    "Thérien",
    "Côté",
    "Brûlé",
    "Ménard",
    "Noël",
    "Perrière",
    "Dœuf",
    "Lœillet",
    "Saint-Exupéry",
];
const SERVICES: &[&str] = &[
    "COMPTA",
    "ACHATS",
    "RH",
    "DSI",
    "JURIDIQUE",
    "LOGISTIQUE",
    "VENTES",
    "MARKETING",
    "PAIE",
    "TRESORERIE",
    "AUDIT",
    "SUPPORT",
];
/// Profile label in the HR file → rights in the portal.
const PROFILES: &[(&str, &str)] = &[
    ("Comptable", "factures:modification"),
    ("Lecteur", "factures:consultation"),
    ("Valideur", "engagements:consultation,factures:modification"),
];
const HEADERS: [&str; 9] =
    ["Matricule", "Nom", "Prénom", "Courriel", "SIRET", "Code service", "Profil", "Date de sortie", "Statut"];

/// splitmix64: tiny, fast, and the same sequence everywhere.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Churn {
    Stable,
    Newcomer,
    Leaver,
    Mover,
    Rights,
    Absentee,
    BadEmail,
    BadService,
}

struct Person {
    id: usize,
    first: &'static str,
    last: &'static str,
    email: String,
    structure: usize,
    service: usize,
    profile: usize,
    churn: Churn,
    /// Leavers: by end date (true) or by status (false). Leavers' end dates are
    /// in October 2026: the bench runs with CHORUS_SYNC_NOW on 2026-11-23.
    by_date: bool,
    /// A future end date on a stable row (a fixed-term contract).
    future_end: Option<(u16, u8, u8)>,
}

impl Person {
    /// The service the portal knows (a mover's previous one).
    fn portal_service(&self) -> usize {
        if self.churn == Churn::Mover { (self.service + 1) % SERVICES.len() } else { self.service }
    }
    fn portal_profile(&self) -> usize {
        if self.churn == Churn::Rights { (self.profile + 1) % PROFILES.len() } else { self.profile }
    }
    fn in_hr(&self) -> bool {
        self.churn != Churn::Absentee
    }
    fn in_portal(&self) -> bool {
        !matches!(self.churn, Churn::Newcomer | Churn::BadEmail | Churn::BadService)
    }
    fn hr_email(&self) -> String {
        match self.churn {
            // A typo HR exports really contain: the domain is missing.
            Churn::BadEmail => self.email.split('@').next().unwrap_or_default().to_string() + "@",
            _ => self.email.clone(),
        }
    }
    fn hr_service(&self) -> &'static str {
        if self.churn == Churn::BadService { "INCONNU" } else { SERVICES[self.service] }
    }
    fn end_date(&self) -> Option<(u16, u8, u8)> {
        match self.churn {
            Churn::Leaver if self.by_date => Some((2026, 10, 1 + (self.id % 28) as u8)),
            _ => self.future_end,
        }
    }
    fn status(&self) -> &'static str {
        if self.churn == Churn::Leaver && !self.by_date { "Sorti" } else { "Actif" }
    }
}

/// Lower-case ASCII for an e-mail local part: accents dropped, ligatures
/// spelled out, anything else but letters and '-' removed.
fn ascii(s: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    s.replace('œ', "oe")
        .replace('Œ', "Oe")
        .nfd()
        .filter(|c| c.is_ascii_alphabetic() || *c == '-')
        .collect::<String>()
        .to_lowercase()
}

/// A valid SIRET: a checksummed SIREN followed by an establishment number.
fn siret(rng: &mut Rng) -> String {
    loop {
        let stem: String = (0..13).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
        if stem.starts_with('0') {
            continue;
        }
        if let Some(s) = (0..10).map(|d| format!("{stem}{d}")).find(|s| Siret::parse(s).is_ok()) {
            return s;
        }
    }
}

struct Structure {
    siret: String,
    name: String,
    domain: String,
    manager: String,
}

struct Dataset {
    structures: Vec<Structure>,
    people: Vec<Person>,
}

fn generate(a: &Args) -> Dataset {
    let mut rng = Rng(a.seed);
    let structures: Vec<Structure> = (0..a.structures.max(1))
        .map(|k| {
            let domain = format!("acme-{:02}.fr", k + 1);
            Structure {
                siret: siret(&mut rng),
                name: format!("ACME Établissement n°{}", k + 1),
                manager: format!("gp@{domain}"),
                domain,
            }
        })
        .collect();
    let mut people = Vec::new();
    let mut hr_rows = 0;
    while hr_rows < a.rows {
        let id = people.len();
        let u = rng.unit();
        let share = a.churn / 5.0;
        let churn = if u < a.bad / 2.0 {
            Churn::BadEmail
        } else if u < a.bad {
            Churn::BadService
        } else {
            match ((u - a.bad) / share) as usize {
                0 => Churn::Newcomer,
                1 => Churn::Leaver,
                2 => Churn::Mover,
                3 => Churn::Rights,
                4 => Churn::Absentee,
                _ => Churn::Stable,
            }
        };
        let first = FIRST[rng.below(FIRST.len())];
        let last = LAST[rng.below(LAST.len())];
        let structure = rng.below(structures.len());
        let email = format!("{}.{}.{id}@{}", ascii(first), ascii(last), structures[structure].domain);
        let future_end = (churn == Churn::Stable && rng.below(20) == 0)
            .then(|| (2027 + rng.below(3) as u16, 1 + rng.below(12) as u8, 1 + rng.below(28) as u8));
        let p = Person {
            id,
            first,
            last,
            email,
            structure,
            service: rng.below(SERVICES.len()),
            profile: rng.below(PROFILES.len()),
            churn,
            by_date: rng.below(2) == 0,
            future_end,
        };
        hr_rows += usize::from(p.in_hr());
        people.push(p);
    }
    Dataset { structures, people }
}

fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    std::fs::create_dir_all(&a.out)?;
    let data = generate(&a);
    for f in &a.formats {
        match f.as_str() {
            "xlsx" => write_xlsx(&data, &a.out.join("hr.xlsx"))?,
            "csv" => write_csv(&data, &a.out.join("hr.csv"), false)?,
            "csv1252" => write_csv(&data, &a.out.join("hr-1252.csv"), true)?,
            // Converted by bench/convert.py (no Rust writer for these).
            "ods" | "xls" => write_csv(&data, &a.out.join("hr-for-convert.csv"), false)?,
            "ldif" => write_ldif(&data, &a.out.join("annuaire.ldif"))?,
            other => anyhow::bail!("unknown format {other:?} (xlsx, csv, csv1252, ods, xls, ldif)"),
        }
    }
    write_portal(&data, &a.out.join("portal.csv"))?;
    write_config(&data, &a.out)?;
    write_expected(&data, &a.out.join("expected.json"))?;
    Ok(())
}

fn hr_people(d: &Dataset) -> impl Iterator<Item = &Person> {
    d.people.iter().filter(|p| p.in_hr())
}

fn write_xlsx(d: &Dataset, path: &Path) -> anyhow::Result<()> {
    let mut wb = Workbook::new();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let bold = Format::new().set_bold();
    let ws = wb.add_worksheet_with_constant_memory()?;
    ws.set_name("Personnel")?;
    ws.write_string_with_format(0, 0, "Groupe ACME — export RH", &bold)?;
    ws.write_string(1, 0, "Extrait le 23/11/2026")?;
    for (c, h) in HEADERS.iter().enumerate() {
        ws.write_string_with_format(3, c as u16, *h, &bold)?;
    }
    for (i, p) in hr_people(d).enumerate() {
        let r = 4 + i as u32;
        ws.write_string(r, 0, format!("M{:07}", p.id))?;
        ws.write_string(r, 1, p.last)?;
        ws.write_string(r, 2, p.first)?;
        ws.write_string(r, 3, p.hr_email())?;
        // SIRETs are often typed as numbers in spreadsheets.
        ws.write_number(r, 4, p_siret(d, p).parse::<f64>()?)?;
        ws.write_string(r, 5, p.hr_service())?;
        ws.write_string(r, 6, PROFILES[p.profile].0)?;
        if let Some((y, m, dd)) = p.end_date() {
            ws.write_datetime_with_format(r, 7, ExcelDateTime::from_ymd(y, m, dd)?, &date)?;
        }
        ws.write_string(r, 8, p.status())?;
    }
    wb.save(path)?;
    Ok(())
}

fn p_siret<'a>(d: &'a Dataset, p: &Person) -> &'a str {
    &d.structures[p.structure].siret
}

fn write_csv(d: &Dataset, path: &Path, windows_1252: bool) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut line = String::new();
    let mut emit = |line: &str| -> std::io::Result<()> {
        if windows_1252 {
            let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(line);
            assert!(!unmappable, "not in Windows-1252: {line}");
            out.write_all(&bytes)
        } else {
            out.write_all(line.as_bytes())
        }
    };
    emit("Groupe ACME — export RH\r\nExtrait le 23/11/2026\r\n")?;
    emit(&(HEADERS.join(";") + "\r\n"))?;
    for p in hr_people(d) {
        use std::fmt::Write as _;
        line.clear();
        let end = p.end_date().map_or(String::new(), |(y, m, dd)| format!("{dd:02}/{m:02}/{y}"));
        writeln!(
            line,
            "M{:07};{};{};{};{};{};{};{};{}\r",
            p.id,
            p.last,
            p.first,
            p.hr_email(),
            p_siret(d, p),
            p.hr_service(),
            PROFILES[p.profile].0,
            end,
            p.status()
        )?;
        emit(&line)?;
    }
    out.flush()?;
    Ok(())
}

/// The portal's export of current attachments (UTF-8 with a BOM, as the
/// portal writes it).
fn write_portal(d: &Dataset, path: &Path) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    out.write_all("\u{feff}Adresse électronique;Nom;Prénom;Identifiant structure;Code service;Profil\r\n".as_bytes())?;
    for p in d.people.iter().filter(|p| p.in_portal()) {
        writeln!(
            out,
            "{};{};{};{};{};{}\r",
            p.email,
            p.last,
            p.first,
            p_siret(d, p),
            SERVICES[p.portal_service()],
            PROFILES[p.portal_profile()].1
        )?;
    }
    out.flush()?;
    Ok(())
}

/// One config for every format: the source's path (and for the directory its
/// URL) are overridden through the environment by the bench.
fn write_config(d: &Dataset, dir: &Path) -> anyhow::Result<()> {
    use std::fmt::Write as _;
    let mut structures = String::new();
    let services = SERVICES.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ");
    for s in &d.structures {
        writeln!(
            structures,
            "[[structures]]\nidentifier = \"{}\"\nname = \"{}\"\nmain_manager = \"{}\"\nservices = [{services}]\n",
            s.siret, s.name, s.manager
        )?;
    }
    let profiles =
        PROFILES.iter().map(|(label, rights)| format!("\"{label}\" = \"{rights}\"")).collect::<Vec<_>>().join(", ");
    let common = format!(
        "timezone = \"Europe/Paris\"\n\n[store]\nurl = \"sqlite://store.db\"\n\n[reports]\ndir = \"reports\"\n\n\
         {structures}"
    );
    // Churn is the point of the benchmark: no guard may hold it, and absent
    // people are detached at once so every churn kind shows in the plan.
    let tail = "[current.columns]\nemail = \"Adresse électronique\"\nlast_name = \"Nom\"\nfirst_name = \"Prénom\"\n\
                structure = \"Identifiant structure\"\nservice = \"Code service\"\nrights = \"Profil\"\n\n\
                [guards]\nmax_detach = false\nmax_detach_percent = false\ngrace_runs = 0\n";
    let spreadsheet = format!(
        "{common}[[sources]]\nname = \"hr\"\nkind = \"spreadsheet\"\npath = \"hr.xlsx\"\n\
         [sources.columns]\nemail = \"Courriel\"\nlast_name = \"Nom\"\nfirst_name = \"Prénom\"\n\
         employee_id = \"Matricule\"\nstructure = \"SIRET\"\nservice = \"Code service\"\nrights = \"Profil\"\n\
         end_date = \"Date de sortie\"\nstatus = \"Statut\"\n\
         [sources.values]\nrights = {{ {profiles} }}\ninactive_status = [\"Sorti\"]\n\n{tail}"
    );
    std::fs::write(dir.join("chorus-sync.toml"), spreadsheet)?;
    let ldap = format!(
        "{common}[[sources]]\nname = \"annuaire\"\nkind = \"ldap\"\nurl = \"ldap://127.0.0.1:389\"\n\
         bind_dn = \"cn=chorus-sync,ou=apps,dc=example,dc=org\"\npassword_env = \"LDAP_PW\"\n\
         base_dn = \"ou=people,dc=example,dc=org\"\nfilter = \"(&(objectClass=inetOrgPerson)(mail=*))\"\n\
         page_size = 500\n\
         [sources.attributes]\nemail = \"mail\"\nlast_name = \"sn\"\nfirst_name = \"givenName\"\n\
         employee_id = \"employeeNumber\"\nstructure = \"o\"\nservice = \"departmentNumber\"\nrights = \"title\"\n\
         status = \"employeeType\"\n\
         [sources.values]\nrights = {{ {profiles} }}\ninactive_status = [\"Sorti\"]\n\n{tail}"
    );
    std::fs::write(dir.join("chorus-sync-ldap.toml"), ldap)?;
    Ok(())
}

/// The same people as directory entries (leavers by `employeeType: Sorti`).
fn write_ldif(d: &Dataset, path: &Path) -> anyhow::Result<()> {
    let mut out = BufWriter::new(File::create(path)?);
    let suffix = "dc=example,dc=org";
    write!(
        out,
        "dn: {suffix}\nobjectClass: dcObject\nobjectClass: organization\no: ACME\ndc: example\n\n\
         dn: ou=people,{suffix}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: ou=apps,{suffix}\nobjectClass: organizationalUnit\nou: apps\n\n\
         dn: cn=chorus-sync,ou=apps,{suffix}\nobjectClass: person\nobjectClass: simpleSecurityObject\n\
         cn: chorus-sync\nsn: app\nuserPassword: bench-secret\n\n"
    )?;
    for p in hr_people(d) {
        let status = if p.churn == Churn::Leaver { "Sorti" } else { "Actif" };
        writeln!(
            out,
            "dn: uid=m{id:07},ou=people,{suffix}\nobjectClass: inetOrgPerson\nuid: m{id:07}\n\
             cn:: {cn}\nsn:: {sn}\ngivenName:: {gn}\nmail: {mail}\nemployeeNumber: M{id:07}\no: {o}\n\
             departmentNumber: {svc}\ntitle: {title}\nemployeeType: {status}\n",
            id = p.id,
            cn = b64(&format!("{} {}", p.first, p.last)),
            sn = b64(p.last),
            gn = b64(p.first),
            mail = p.hr_email(),
            o = p_siret(d, p),
            svc = p.hr_service(),
            title = PROFILES[p.profile].0,
        )?;
    }
    out.flush()?;
    Ok(())
}

/// LDIF needs base64 (`::`) for non-ASCII values.
fn b64(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len().div_ceil(3) * 4);
    for chunk in b.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &x)| n | u32::from(x) << (16 - 8 * i));
        for i in 0..4 {
            out.push(if i <= chunk.len() { char::from(T[(n >> (18 - 6 * i) & 63) as usize]) } else { '=' });
        }
    }
    out
}

/// What a plan of the generated data must count.
fn write_expected(d: &Dataset, path: &Path) -> anyhow::Result<()> {
    let n = |c: Churn| d.people.iter().filter(|p| p.churn == c).count();
    let expected = serde_json::json!({
        "rows": hr_people(d).count(),
        "current": d.people.iter().filter(|p| p.in_portal()).count(),
        "attach": n(Churn::Newcomer),
        "detach": n(Churn::Leaver) + n(Churn::Absentee),
        "move": n(Churn::Mover),
        "rights": n(Churn::Rights),
        "anomalies": n(Churn::BadEmail) + n(Churn::BadService),
        "structures": d.structures.iter().map(|s| &s.siret).collect::<Vec<_>>(),
    });
    std::fs::write(path, serde_json::to_string_pretty(&expected)? + "\n")?;
    Ok(())
}
