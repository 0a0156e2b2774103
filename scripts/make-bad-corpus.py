#!/usr/bin/env python3
"""Writes the corpus of broken and hostile source files in tests/data/bad/.

Run from the repository root: python3 scripts/make-bad-corpus.py
Needs: pip install openpyxl xlwt odfpy (msoffcrypto-tool made encrypted-hr.xlsx,
which is kept as is). The outputs are committed, so tests never need Python;
src/source/corpus.rs says what each file must give. Every file is small on
disk: the zip bombs are a few hundred KB, the 10 MB cell is made at test time.

Most workbooks are written by hand (a minimal xlsx is five XML parts), which
gives control over what libraries would refuse to write: cached formula
values, merged headers, hidden sheets, absurd dimensions, lying sizes.
"""

import io
import os
import struct
import zipfile
import zlib

OUT = os.path.join("tests", "data", "bad")

HEADER = ["Matricule", "Nom", "Prénom", "Courriel", "SIRET", "Code service", "Date de sortie"]
ROWS = [
    ["E001", "Dupont", "Marie", "marie.dupont@acme.fr", "12345678200010", "COMPTA", ""],
    ["E002", "Martin", "Éloïse", "eloise.martin@acme.fr", "12345678200010", "ACHATS", "31/10/2026"],
    ["E003", "Lefèvre", "Jean-Noël", "jn.lefevre@acme.fr", "12345678200010", "", ""],
]


def path(name):
    return os.path.join(OUT, name)


def write(name, data):
    with open(path(name), "wb") as f:
        f.write(data)


# ---- csv -------------------------------------------------------------------


def csv_text(rows, sep=";", nl="\r\n"):
    return "".join(sep.join(r) + nl for r in rows)


def good_csv():
    return csv_text([HEADER] + ROWS)


# ---- hand-made xlsx ----------------------------------------------------------

CONTENT_TYPES = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">
<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>
<Default Extension="xml" ContentType="application/xml"/>
<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>
{sheets}
</Types>"""
ROOT_RELS = """<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">
<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""
NS = 'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" ' \
     'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"'


def col_name(i):
    s = ""
    i += 1
    while i:
        i, r = divmod(i - 1, 26)
        s = chr(65 + r) + s
    return s


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def cell(r, c, v):
    """An inline-string cell, or raw XML when v is a ('raw', xml) tuple."""
    ref = f"{col_name(c)}{r}"
    if isinstance(v, tuple):
        return v[1].replace("{ref}", ref)
    if v == "":
        return ""
    return f'<c r="{ref}" t="inlineStr"><is><t xml:space="preserve">{esc(v)}</t></is></c>'


def sheet_xml(rows, first_row=1, extra="", dimension=None, after_rows=""):
    out = [f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<worksheet {NS}>']
    if dimension:
        out.append(f'<dimension ref="{dimension}"/>')
    out.append("<sheetData>")
    for i, row in enumerate(rows):
        r = first_row + i
        if row is None:
            continue
        out.append(f'<row r="{r}">' + "".join(cell(r, c, v) for c, v in enumerate(row)) + "</row>")
    out.append(after_rows)
    out.append("</sheetData>" + extra + "</worksheet>")
    return "".join(out)


def xlsx(sheets, parts=None, compress=zipfile.ZIP_DEFLATED):
    """sheets: [(name, xml, state)] with state None or "hidden"; parts: extra {name: bytes}."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compress) as z:
        overrides = "\n".join(
            f'<Override PartName="/xl/worksheets/sheet{i + 1}.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>'
            for i in range(len(sheets))
        )
        z.writestr("[Content_Types].xml", CONTENT_TYPES.format(sheets=overrides))
        z.writestr("_rels/.rels", ROOT_RELS)
        entries = "".join(
            f'<sheet name="{esc(n)}" sheetId="{i + 1}" r:id="rId{i + 1}"' + (f' state="{s}"' if s else "") + "/>"
            for i, (n, _, s) in enumerate(sheets)
        )
        z.writestr("xl/workbook.xml", f'<?xml version="1.0" encoding="UTF-8"?>\n<workbook {NS}><sheets>{entries}</sheets></workbook>')
        rels = "".join(
            f'<Relationship Id="rId{i + 1}" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet{i + 1}.xml"/>'
            for i in range(len(sheets))
        )
        z.writestr(
            "xl/_rels/workbook.xml.rels",
            '<?xml version="1.0" encoding="UTF-8"?>\n<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
            + rels + "</Relationships>",
        )
        for i, (_, xml, _) in enumerate(sheets):
            z.writestr(f"xl/worksheets/sheet{i + 1}.xml", xml)
        for name, data in (parts or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


def good_xlsx(name="Personnel"):
    return xlsx([(name, sheet_xml([HEADER] + ROWS), None)])


# ---- zip surgery -------------------------------------------------------------


def deflate_stream(chunks):
    """Raw deflate of the concatenated chunks, and (size, crc)."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out, size, crc = [], 0, 0
    for ch in chunks:
        out.append(c.compress(ch))
        size += len(ch)
        crc = zlib.crc32(ch, crc)
    out.append(c.flush())
    return b"".join(out), size, crc


def raw_zip(entries):
    """entries: [(name, deflated bytes, size, crc)], or (name, None, size, crc, offset_of) to point a
    second central directory record at an earlier entry's data (overlapping entries). Sizes may be
    zip64 (> 4 GiB)."""
    body = io.BytesIO()
    central = []
    offsets = {}
    for e in entries:
        name, data, size, crc = e[:4]
        nb = name.encode()
        if data is None:
            off, comp = offsets[e[4]]
        else:
            off, comp = body.tell(), len(data)
            offsets[name] = (off, comp)
            body.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, comp, min(size, 0xFFFFFFFF), len(nb), 0))
            body.write(nb)
            body.write(data)
        extra = b""
        usize, csize, uoff = size, comp, off
        if size >= 0xFFFFFFFF:
            extra = struct.pack("<HHQ", 1, 8, size)
            usize = 0xFFFFFFFF
        central.append(
            struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, crc, csize, usize, len(nb), len(extra), 0, 0, 0, 0, uoff)
            + nb + extra
        )
    cd_start = body.tell()
    cd = b"".join(central)
    body.write(cd)
    body.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(central), len(central), len(cd), cd_start, 0))
    return body.getvalue()


def skeleton_parts():
    """The small parts of a one-sheet xlsx, deflated, for raw_zip."""
    src = zipfile.ZipFile(io.BytesIO(xlsx([("Personnel", sheet_xml([HEADER] + ROWS), None)])))
    out = []
    for info in src.infolist():
        if info.filename.startswith("xl/worksheets/"):
            continue
        data = src.read(info.filename)
        d, size, crc = deflate_stream([data])
        out.append((info.filename, d, size, crc))
    return out


def zip_bomb_ratio():
    """A worksheet of 300 MB of zeros after a valid start: ~300 KB on disk, ratio ~1000."""
    head = sheet_xml([HEADER] + ROWS).encode().split(b"</sheetData>")[0]
    zeros = b"\0" * (1 << 20)
    d, size, crc = deflate_stream([head] + [zeros] * 300)
    return raw_zip(skeleton_parts() + [("xl/worksheets/sheet1.xml", d, size, crc)])


def zip_bomb_overlap():
    """Twenty entries sharing one 250 MB kernel of zeros: 5 GB declared from ~250 KB."""
    d, size, crc = deflate_stream([b"\0" * (1 << 20)] * 250)
    entries = skeleton_parts() + [("xl/sharedStrings.xml", d, size, crc)]
    entries += [(f"xl/customParts/part{i}.xml", None, size, crc, "xl/sharedStrings.xml") for i in range(19)]
    return raw_zip(entries)


def zip_declared_huge():
    """A shared strings part declaring 5 GiB (zip64) that holds 10 bytes."""
    d, _, crc = deflate_stream([b"<sst></sst>"])
    return raw_zip(skeleton_parts() + [("xl/sharedStrings.xml", d, 5 << 30, crc)] + [
        ("xl/worksheets/sheet1.xml",) + deflate_stream([sheet_xml([HEADER] + ROWS).encode()])
    ])


def zip_liar():
    """A shared strings part that inflates to 2 MB but declares 1000 bytes."""
    sst = b'<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">' + b"<si><t>x</t></si>" * 120000 + b"</sst>"
    d, _, crc = deflate_stream([sst])
    return raw_zip(skeleton_parts() + [("xl/sharedStrings.xml", d, 1000, crc)] + [
        ("xl/worksheets/sheet1.xml",) + deflate_stream([sheet_xml([HEADER] + ROWS).encode()])
    ])


# ---- ods ---------------------------------------------------------------------


def ods(body_rows_xml, sheet="Personnel"):
    content = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2">'
        f'<office:body><office:spreadsheet><table:table table:name="{sheet}">'
        + body_rows_xml
        + "</table:table></office:spreadsheet></office:body></office:document-content>"
    )
    manifest = (
        '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
        '<manifest:file-entry manifest:full-path="/" manifest:media-type="application/vnd.oasis.opendocument.spreadsheet"/>'
        '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml"/></manifest:manifest>'
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.spreadsheet")
        z.writestr("META-INF/manifest.xml", manifest, zipfile.ZIP_DEFLATED)
        z.writestr("content.xml", content, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def ods_row(values):
    cells = "".join(
        '<table:table-cell office:value-type="string"><text:p>' + esc(v) + "</text:p></table:table-cell>"
        if v else "<table:table-cell/>"
        for v in values
    )
    return f"<table:table-row>{cells}</table:table-row>"


# ---- xls ---------------------------------------------------------------------


def good_xls():
    import xlwt

    wb = xlwt.Workbook(encoding="utf-8")
    ws = wb.add_sheet("Personnel")
    for r, row in enumerate([HEADER] + ROWS):
        for c, v in enumerate(row):
            if v:
                ws.write(r, c, v)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def xls_bogus_biff():
    """A LABELSST/LABEL record in the workbook stream given a length running past the stream."""
    data = bytearray(good_xls())
    # BIFF8 cells written by xlwt are LABELSST (0x00FD), length 10.
    i = data.find(b"\xfd\x00\x0a\x00")
    assert i > 0
    data[i + 2:i + 4] = struct.pack("<H", 0xFFF0)
    return bytes(data)


def xls_bogus_sst():
    """A shared string table claiming 2^31 strings."""
    data = bytearray(good_xls())
    i = data.find(b"\xfc\x00")  # SST record
    assert i > 0
    data[i + 4:i + 12] = struct.pack("<II", 0x7FFFFFFF, 0x7FFFFFFF)
    return bytes(data)


# ---- the corpus --------------------------------------------------------------


def main():
    os.makedirs(OUT, exist_ok=True)
    x = good_xlsx()
    csv_ok = good_csv()

    # Containers and magic.
    write("truncated.xlsx", x[: len(x) // 2])
    write("zip-bomb.xlsx", zip_bomb_ratio())
    write("zip-bomb-overlap.xlsx", zip_bomb_overlap())
    write("zip-declared-5gib.xlsx", zip_declared_huge())
    write("zip-liar.xlsx", zip_liar())
    write("wrong-magic.xlsx", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89")
    write("pdf-named.csv", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\n")
    write("empty-zip.xlsx", raw_zip([]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    write("docx-named.xlsx", buf.getvalue())
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    write("odt-named.ods", buf.getvalue())
    write("xlsx-named.csv", x)
    write("xlsx-no-workbook.xlsx", zip_without(x, "xl/workbook.xml"))
    write("xlsx-bad-xml.xlsx", xlsx([("Personnel", sheet_xml([HEADER] + ROWS)[:-40] + "<row r=", None)]))
    write(
        "xlsx-bad-shared-string.xlsx",
        xlsx(
            [("Personnel", sheet_xml([HEADER, ["E9", "X", "Y", ("raw", '<c r="{ref}" t="s"><v>999999</v></c>')]]), None)],
            {"xl/sharedStrings.xml": '<?xml version="1.0"?><sst xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" count="1" uniqueCount="1"><si><t>a</t></si></sst>'},
        ),
    )
    write("encrypted-hr.xlsx", open(path("encrypted-hr.xlsx"), "rb").read())  # kept as is
    xls = good_xls()
    write("xls-bogus-biff.xls", xls_bogus_biff())
    write("xls-bogus-sst.xls", xls_bogus_sst())
    write("xls-truncated.xls", xls[:1500])
    write("ole2-garbage.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(range(256)) * 8)
    write("html-as.xls", b"<html><head><meta charset=\"utf-8\"></head><body><table>\n<tr><td>Courriel</td><td>Nom</td></tr>\n"
          b"<tr><td>marie.dupont@acme.fr</td><td>Dupont</td></tr>\n</table></body></html>\n")
    write("xml-spreadsheet-2003.xls", (
        '<?xml version="1.0"?>\n<?mso-application progid="Excel.Sheet"?>\n'
        '<Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"><Worksheet ss:Name="Personnel"><Table>'
        '<Row><Cell><Data ss:Type="String">Courriel</Data></Cell></Row></Table></Worksheet></Workbook>\n').encode())
    write("rtf-named.csv", b"{\\rtf1\\ansi Courriel;Nom\\par}\n")
    o = ods("".join(ods_row(r) for r in [HEADER] + ROWS))
    write("ods-truncated.ods", o[: len(o) // 2])

    # Text files.
    write("empty.csv", b"")
    write("bom-only.csv", b"\xef\xbb\xbf")
    write("only-delimiters.csv", b";;;;\r\n;;;;\r\n\r\n")
    write("header-only.csv", csv_text([HEADER]).encode())
    write("nul-bytes.csv", csv_ok.replace("Dupont", "Dup\0nt").encode())
    late = csv_text([HEADER] + ROWS + [[f"E{i}", "N", "P", f"user{i}@acme.fr", "12345678200010", "", ""] for i in range(400)])
    write("nul-bytes-late.csv", (late + "E999;Nul;Octet;nul\0@acme.fr;12345678200010;;\r\n").encode())
    write("binary-garbage.csv", bytes((i * 37 + 11) % 256 for i in range(4096)))
    mixed = csv_text([HEADER], nl="\r\n") + csv_text(ROWS[:1], nl="\n") + csv_text(ROWS[1:2], nl="\r") + csv_text(ROWS[2:], nl="\r\n")
    write("mixed-line-endings.csv", mixed.encode())
    write("cr-only.csv", csv_text([HEADER] + ROWS, nl="\r").encode())
    unbalanced = csv_text([HEADER, ROWS[0]]) + 'E002;"Martin;Éloïse;eloise.martin@acme.fr;12345678200010;ACHATS;\r\n' + csv_text(ROWS[2:])
    write("unbalanced-quotes.csv", unbalanced.encode())
    tail = csv_text([[f"E{i}", "N", "P", f"user{i}@acme.fr", "12345678200010", "", ""] for i in range(1000)])
    write("unbalanced-quotes-long.csv", (csv_text([HEADER, ROWS[0]]) + 'E002;"Martin;' + tail).encode())
    write("utf16le-no-bom.csv", good_csv().encode("utf-16-le"))
    write("utf16be-no-bom.csv", good_csv().encode("utf-16-be"))
    write("cp1252.csv", good_csv().encode("cp1252"))
    write("header-60-down.csv", ("".join(f"Note {i}\r\n" for i in range(59)) + good_csv()).encode())
    write("duplicate-headers.csv", csv_text([HEADER + ["courriel "]] + ROWS).encode())
    write("renamed-column.csv", csv_text([[h.replace("Courriel", "E-mail") for h in HEADER]] + ROWS).encode())
    dates = [HEADER] + [
        ["E001", "Dupont", "Marie", "marie.dupont@acme.fr", "12345678200010", "COMPTA", "31/10/2026"],
        ["E002", "Martin", "Éloïse", "eloise.martin@acme.fr", "12345678200010", "ACHATS", "2026-10-31"],
        ["E003", "Lefèvre", "Jean-Noël", "jn.lefevre@acme.fr", "12345678200010", "", "31.10.2026"],
    ]
    write("dates-as-text.csv", csv_text(dates).encode())
    write("formula-injection.csv", csv_text([HEADER, ["=1+1", "+Dupont", "-M", "@SUM(A1)", "12345678200010", "\tX", ""]]).encode())

    # Workbooks whose structure is odd but readable.
    formulas = sheet_xml([HEADER, [
        "E001",
        ("raw", '<c r="{ref}" t="str"><f>PROPER("dupont")</f><v>Dupont</v></c>'),
        "Marie",
        ("raw", '<c r="{ref}" t="str"><f>LOWER("MARIE.DUPONT@ACME.FR")</f><v>marie.dupont@acme.fr</v></c>'),
        ("raw", '<c r="{ref}"><f>12345678200000+10</f><v>12345678200010</v></c>'),
        ("raw", '<c r="{ref}" t="e"><f>1/0</f><v>#DIV/0!</v></c>'),
    ]])
    write("formulas.xlsx", xlsx([("Personnel", formulas, None)]))
    merged = sheet_xml(
        [["Identité", "", "", "Rattachement", "", "", ""], HEADER] + ROWS,
        extra='<mergeCells count="2"><mergeCell ref="A1:C1"/><mergeCell ref="D1:G1"/></mergeCells>',
    )
    write("merged-header.xlsx", xlsx([("Personnel", merged, None)]))
    merged_courriel = sheet_xml(
        [["Matricule", "Nom", "Prénom", "Courriel", "", "SIRET"]] + [r[:4] + [""] + r[4:5] for r in ROWS],
        extra='<mergeCells count="1"><mergeCell ref="D1:E1"/></mergeCells>',
    )
    write("merged-header-cell.xlsx", xlsx([("Personnel", merged_courriel, None)]))
    write("hidden-sheet.xlsx", xlsx([
        ("Brouillon", sheet_xml([["Courriel"], ["pas.la@acme.fr"]]), "hidden"),
        ("Personnel", sheet_xml([HEADER] + ROWS), None),
    ]))
    write("only-hidden-sheets.xlsx", xlsx([("Caché", sheet_xml([HEADER] + ROWS), "veryHidden")]))
    write("header-30-down.xlsx", xlsx([("Personnel", sheet_xml([[f"Notice ligne {i}"] for i in range(1, 30)] + [HEADER] + ROWS), None)]))
    write("duplicate-headers.xlsx", xlsx([("Personnel", sheet_xml([HEADER + ["COURRIEL"]] + ROWS), None)]))
    write("accented-sheet-name.xlsx", xlsx([("Résumé", sheet_xml([["Rien"]]), None), ("Données RH", sheet_xml([HEADER] + ROWS), None)]))
    write("dimension-2gb.xlsx", xlsx([("Personnel", sheet_xml([HEADER] + ROWS, dimension="A1:XFD1048576"), None)]))
    # Rows may leave out their number (r): a million empty ones cost a few KB.
    empty_rows = "<row><c/><c/></row>" * 1_000_000
    write("million-empty-rows.xlsx", xlsx([("Personnel", sheet_xml([HEADER] + ROWS, after_rows=empty_rows), None)]))
    write("last-row-1048576.xlsx", xlsx([("Personnel", sheet_xml([HEADER] + ROWS, after_rows='<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>fin</t></is></c></row>'), None)]))
    write("many-sheets.xlsx", xlsx([(f"Feuille {i}", sheet_xml([["x"]]), None) for i in range(300)]))
    write("no-sheets.xlsx", xlsx([]))
    write("error-cells.xlsx", xlsx([("Personnel", sheet_xml([HEADER, ["E1", "X", "Y", ("raw", '<c r="{ref}" t="e"><v>#N/A</v></c>'), "12345678200010"]] + ROWS), None)]))
    write("empty-sheet.xlsx", xlsx([("Personnel", sheet_xml([]), None)]))
    write("million-empty-rows.ods", ods(
        "".join(ods_row(r) for r in [HEADER] + ROWS)
        + '<table:table-row table:number-rows-repeated="1048000"><table:table-cell table:number-columns-repeated="16384"/></table:table-row>'
    ))
    write("ods-bad-xml.ods", ods("<table:table-row><table:table-cell"))


def zip_without(data, name):
    src = zipfile.ZipFile(io.BytesIO(data))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for info in src.infolist():
            if info.filename != name:
                z.writestr(info.filename, src.read(info.filename))
    return buf.getvalue()


if __name__ == "__main__":
    main()
