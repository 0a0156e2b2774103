#!/usr/bin/env python3
"""Generates the shipped samples (committed; rerun only to change them).

samples/hr.xlsx            HR export of ACME France: two title lines above the
                           header, an Excel date, a SIRET typed as a number,
                           and one row for each rule of DESIGN.md §6.
samples/hr.csv             The same export as a Windows-1252 `;` csv.
samples/acme-services.csv  HR export of ACME Services: Windows-1252, `;`,
                           no structure column (default_structure applies).
samples/portal-export.csv  The portal's current attachments of both.
"""
import csv, datetime, pathlib
import openpyxl

ROOT = pathlib.Path(__file__).resolve().parent.parent / "samples"
ACME = "12345678200010"
SERVICES = "98765432400001"
CLIENT = "73282932000074"  # a client's SIRET: never a target

# (matricule, nom, prénom, courriel, siret, service, profil, date de sortie, statut)
hr = [
    ("A001", "Dupont", "Marie", "marie.dupont@acme.fr", ACME, "COMPTA", "Comptable", None, "Actif"),
    ("A002", "Martin", "Jean", "jean.martin@acme.fr", ACME, "ACHATS", "Lecteur", None, "Actif"),        # move COMPTA -> ACHATS
    ("A003", "Bernard", "Sophie", "sophie.bernard@acme.fr", ACME, "COMPTA", "Lecteur", None, "Actif"),  # rights down
    ("A004", "Petit", "Luc", "luc.petit@acme.fr", ACME, "RH", "Lecteur", None, "Actif"),                # new: attach
    ("A005", "Moreau", "Claire", "claire.moreau@acme.fr", ACME, "ACHATS", "Lecteur", datetime.date(2026, 10, 31), "Actif"),  # left: end date
    ("A006", "Durand", "Paul", "paul.durand@acme.fr", ACME, "COMPTA", "Comptable", None, "Sorti"),      # left: status
    ("A007", "Lefebvre", "Julie", "julie.lefebvre@acme.fr", ACME, "COMPTA", "Comptable", None, "Actif"),
    ("A007", "Lefebvre", "Julie", "julie.lefebvre@acme.fr", ACME, "ACHATS", "Lecteur", None, "Actif"),  # second row: attach ACHATS
    ("A008", "Roux", "Thomas", "thomas.roux@", ACME, "COMPTA", "Lecteur", None, "Actif"),              # invalid e-mail
    ("A009", "Fournier", "Emma", "emma.fournier@acme.fr", CLIENT, "COMPTA", "Lecteur", None, "Actif"), # a client's SIRET
    ("A010", "Garnier", "Nicolas", "nicolas.garnier@acme.fr", ACME, "MARKETING", "Lecteur", None, "Actif"),  # unknown service: protected
    ("A011", "Chevalier", "Léa", "lea.chevalier@acme.fr", ACME, "ACHATS", "Chef", None, "Actif"),      # unknown profile
    ("A012", "Lambert", "Hugo", None, ACME, "COMPTA", "Lecteur", None, "Actif"),                         # no e-mail
    ("A013", "Bonnet", "Camille", "camille.bonnet@acme.fr", ACME, None, "Lecteur", None, "Actif"),      # structure level: attach
    ("A014", "François", "Inès", "ines.francois@acme.fr", ACME, "COMPTA", "Lecteur", datetime.date(2027, 3, 31), "Actif"),  # leaves later
]
steady = [
    ("Mercier", "Louis"), ("Blanc", "Chloé"), ("Guerin", "Arthur"), ("Boyer", "Manon"), ("Faure", "Gabriel"),
    ("Andre", "Zoé"), ("Rousseau", "Jules"), ("Vincent", "Alice"), ("Muller", "Adam"), ("Lefevre", "Lina"),
    ("Legrand", "Raphaël"), ("Gauthier", "Rose"), ("Perrin", "Noah"), ("Morin", "Anna"), ("Clement", "Paul"),
]
for i, (last, first) in enumerate(steady):
    service = ["COMPTA", "ACHATS", "RH"][i % 3]
    profile = ["Comptable", "Lecteur"][i % 2]
    email = f"{first.lower()}.{last.lower()}@acme.fr".replace("é", "e").replace("ë", "e")
    hr.append((f"B{i:03d}", last, first, email, ACME, service, profile, None, "Actif"))

PROFILES = {"Comptable": "factures:modification", "Lecteur": "factures:consultation"}

wb = openpyxl.Workbook()
ws = wb.active
ws.title = "Personnel"
ws.append(["ACME France — export RH"])
ws.append(["Extrait le 23/11/2026"])
ws.append(["Matricule", "Nom", "Prénom", "Courriel", "SIRET", "Code service", "Profil", "Date de sortie", "Statut"])
for r in hr:
    row = list(r)
    row[4] = int(row[4])  # typed as a number, as HR tools do
    ws.append(row)
for cell in ws["H"][3:]:
    if cell.value is not None:
        cell.number_format = "DD/MM/YYYY"
wb.create_sheet("Notes").append(["Ce classeur est un échantillon fictif."])
wb.save(ROOT / "hr.xlsx")

# The same HR export as the csv an older HR tool writes: Windows-1252, `;`,
# dd/mm/yyyy dates, the same title lines.
with open(ROOT / "hr.csv", "w", encoding="cp1252", newline="") as f:
    w = csv.writer(f, delimiter=";", lineterminator="\r\n")
    w.writerow(["ACME France — export RH"])
    w.writerow(["Extrait le 23/11/2026"])
    w.writerow(["Matricule", "Nom", "Prénom", "Courriel", "SIRET", "Code service", "Profil", "Date de sortie", "Statut"])
    for r in hr:
        row = ["" if v is None else v for v in r]
        if isinstance(r[7], datetime.date):
            row[7] = r[7].strftime("%d/%m/%Y")
        w.writerow(row)

# ACME Services: a Windows-1252 csv with `;`, no structure column.
services = [
    ("S001", "Lemaire", "Céline", "celine.lemaire@acme-services.fr", "SUPPORT", "Comptable", "", "Actif"),
    ("S002", "Roche", "François", "francois.roche@acme-services.fr", "VENTES", "Lecteur", "", "Actif"),  # move SUPPORT -> VENTES
    ("S003", "Garcia", "Hélène", "helene.garcia@acme-services.fr", "SUPPORT", "Lecteur", "", "Actif"),
    ("S004", "Nicolas", "Jérôme", "jerome.nicolas@acme-services.fr", "VENTES", "Lecteur", "15/11/2026", "Actif"),  # left
    ("S005", "Fabre", "Agnès", "agnes.fabre@acme-services.fr", "VENTES", "Comptable", "", "Actif"),  # new
    ("S006", "Caron", "Benoît", "benoit.caron@acme-services.fr", "SUPPORT", "Lecteur", "", "Actif"),
]
with open(ROOT / "acme-services.csv", "w", encoding="cp1252", newline="") as f:
    w = csv.writer(f, delimiter=";", lineterminator="\r\n")
    w.writerow(["Matricule", "Nom", "Prénom", "Courriel", "Code service", "Profil", "Date de sortie", "Statut"])
    for r in services:
        w.writerow(r)

# The portal today.
current = []
def cur(email, last, first, siret, service, profile):
    current.append((email, last, first, siret, service or "", PROFILES.get(profile, profile)))

for r in hr:
    matricule, last, first, email, siret, service, profile, end, status = r
    if email in (None, "thomas.roux@", "luc.petit@acme.fr", "camille.bonnet@acme.fr", "emma.fournier@acme.fr"):
        continue
    if email == "jean.martin@acme.fr":
        service = "COMPTA"
    if email == "sophie.bernard@acme.fr":
        profile = "Comptable"
    if email == "julie.lefebvre@acme.fr" and service == "ACHATS":
        continue
    if email == "nicolas.garnier@acme.fr":
        service = "COMPTA"
    if email == "lea.chevalier@acme.fr":
        profile = "Lecteur"
    cur(email, last, first, ACME, service, profile)
cur("thomas.roux@acme.fr", "Roux", "Thomas", ACME, "COMPTA", "Lecteur")
cur("antoine.girard@acme.fr", "Girard", "Antoine", ACME, "ACHATS", "Lecteur")   # gone from HR: grace, then detach
cur("gp@acme.fr", "Principal", "Gestionnaire", ACME, None, "factures:modification")  # the main manager
cur("emma.fournier@acme.fr", "Fournier", "Emma", CLIENT, None, "Lecteur")          # a client's structure: ignored
for r in services:
    matricule, last, first, email, service, profile, end, status = r
    if email == "agnes.fabre@acme-services.fr":
        continue
    if email == "francois.roche@acme-services.fr":
        service = "SUPPORT"
    cur(email, last, first, SERVICES, service, profile)
cur("gp@acme-services.fr", "Principal", "Gestionnaire", SERVICES, None, "factures:modification")

with open(ROOT / "portal-export.csv", "w", encoding="utf-8-sig", newline="") as f:
    w = csv.writer(f, delimiter=";", lineterminator="\r\n")
    w.writerow(["Adresse électronique", "Nom", "Prénom", "Identifiant structure", "Code service", "Profil"])
    for r in current:
        w.writerow(r)
print(f"{len(hr)} HR rows, {len(services)} ACME Services rows, {len(current)} current attachments")
