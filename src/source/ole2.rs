//! A check of xls (OLE2 compound file) sector chains before calamine reads
//! them. Found by fuzzing: calamine 0.38 follows a FAT chain until its end
//! marker, so a chain that loops back on itself makes it allocate until the
//! process dies (tests/data/bad/fuzz-xls-fat-cycle.xls, 14 KB). A chain
//! without loops is at most as long as the file, which bounds what it reads.

use std::{
    fs::File,
    io::{Read, Seek, SeekFrom},
    path::Path,
};

use super::SourceError;

/// Sector ids from here up are markers (end of chain, free, FAT, DIFAT).
const MAX_REGULAR: u32 = 0xFFFF_FFFA;

/// Fails when the file's FAT holds a loop. Other damage is left to calamine,
/// which reports it (or panics, which the reader turns into an error).
pub(super) fn check(path: &Path, origin: &str) -> Result<(), SourceError> {
    let corrupt = |message: String| SourceError::Spreadsheet {
        path: origin.to_string(),
        message: format!("corrupt xls file: {message}"),
    };
    let io = |e: std::io::Error| SourceError::io(origin, e);
    let mut file = File::open(path).map_err(io)?;
    let len = file.metadata().map_err(io)?.len();
    let mut header = [0u8; 512];
    if file.read_exact(&mut header).is_err() {
        // Too short to be an OLE2 file: calamine says so.
        return Ok(());
    }
    let sector_size: u64 = match u16_at(&header, 30) {
        9 => 512,
        12 => 4096,
        _ => return Ok(()),
    };
    let sectors = len / sector_size;
    let fat_sector_ids = fat_sector_ids(&mut file, &header, sector_size, sectors).map_err(io)?;
    let mut fat: Vec<u32> = Vec::new();
    let mut buf = vec![0u8; sector_size as usize];
    for id in fat_sector_ids {
        // Sector `id` starts after the header, which takes one sector.
        // A last, partial sector counts as far as it goes, as calamine reads it.
        let at = (u64::from(id) + 1) * sector_size;
        if at >= len {
            continue;
        }
        file.seek(SeekFrom::Start(at)).map_err(io)?;
        let n = (len - at).min(sector_size) as usize;
        file.read_exact(&mut buf[..n]).map_err(io)?;
        fat.extend(buf[..n].chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])));
        // More FAT than sectors in the file is padding at best.
        if fat.len() as u64 > sectors.saturating_add(1) * sector_size / 4 {
            break;
        }
    }
    match find_loop(&fat) {
        Some(start) => Err(corrupt(format!("the sector chain through sector {start} loops back on itself"))),
        None => Ok(()),
    }
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// The FAT's own sectors: 109 ids in the header, then the DIFAT chain (each
/// DIFAT sector lists ids and ends with the next DIFAT sector), which is
/// followed at most once per sector of the file.
fn fat_sector_ids(file: &mut File, header: &[u8; 512], sector_size: u64, sectors: u64) -> std::io::Result<Vec<u32>> {
    let mut ids: Vec<u32> = (76..512).step_by(4).map(|at| u32_at(header, at)).collect();
    let mut next = u32_at(header, 68);
    let mut buf = vec![0u8; sector_size as usize];
    let mut hops = 0u64;
    while next < MAX_REGULAR && hops <= sectors {
        hops += 1;
        let at = (u64::from(next) + 1) * sector_size;
        file.seek(SeekFrom::Start(at))?;
        if file.read_exact(&mut buf).is_err() {
            break;
        }
        let entries: Vec<u32> = buf.chunks_exact(4).map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        let (last, rest) = entries.split_last().unwrap_or((&u32::MAX, &[]));
        ids.extend_from_slice(rest);
        next = *last;
    }
    ids.retain(|id| *id < MAX_REGULAR);
    Ok(ids)
}

/// A sector from which following the FAT never ends, if any. Each entry is
/// visited a bounded number of times: walks stop at sectors already known to
/// end, and a walk meeting its own path has found a loop.
fn find_loop(fat: &[u32]) -> Option<u32> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unknown,
        OnPath,
        Ends,
    }
    let mut marks = vec![Mark::Unknown; fat.len()];
    let mut path = Vec::new();
    for start in 0..fat.len() {
        let mut at = start;
        loop {
            match marks[at] {
                Mark::Ends => break,
                Mark::OnPath => return u32::try_from(start).ok(),
                Mark::Unknown => {}
            }
            marks[at] = Mark::OnPath;
            path.push(at);
            let next = fat[at];
            if next >= MAX_REGULAR || next as usize >= fat.len() {
                break;
            }
            at = next as usize;
        }
        for p in path.drain(..) {
            marks[p] = Mark::Ends;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const END: u32 = 0xFFFF_FFFE;
    const FREE: u32 = 0xFFFF_FFFF;

    #[test]
    fn loops_in_the_fat() {
        for (fat, expect) in [
            (vec![], None),
            (vec![1, 2, END, FREE], None),
            (vec![END, 0, 1, 2], None),
            // 0 → 1 → 0
            (vec![1, 0], Some(0)),
            (vec![0], Some(0)),
            // 0 → 1 → 2 → 1, reached from a chain that starts well.
            (vec![1, 2, 1, END], Some(0)),
            // A loop among later sectors only.
            (vec![END, END, 3, 2], Some(2)),
            // Out of range ends the walk (calamine reports it).
            (vec![7, END], None),
        ] {
            assert_eq!(find_loop(&fat), expect, "{fat:?}");
        }
    }

    #[test]
    fn long_chains_are_linear() {
        let mut fat: Vec<u32> = (1..=200_000).collect();
        fat[199_999] = END;
        assert_eq!(find_loop(&fat), None);
        fat[199_999] = 0;
        assert_eq!(find_loop(&fat), Some(0));
    }

    #[test]
    fn real_files_pass() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
        for f in ["tests/data/source/hr.xls", "tests/data/bad/encrypted-hr.xlsx", "tests/data/bad/xls-bogus-biff.xls"] {
            check(&dir.join(f), f).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }
}
