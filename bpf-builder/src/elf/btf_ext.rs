//! `.BTF.ext`: `func_info` and `line_info` records grouped by ELF section,
//! instruction offsets in bytes from the start of the section.

use crate::btf::{FUNC_INFO_SIZE, LINE_INFO_SIZE, LineInfo, TypeId, encode_line_info};

/// The records of one section.
#[derive(Clone, Debug, Default)]
pub(crate) struct SectionInfo {
    /// String offset (in `.BTF`) of the section name.
    pub name_off: u32,
    /// `(instruction index, FUNC type id)`.
    pub funcs: Vec<(u32, TypeId)>,
    /// Line records, `insn` as an instruction index.
    pub lines: Vec<LineInfo>,
}

/// Encodes the `.BTF.ext` section (header of 32 bytes, no CO-RE records).
pub(crate) fn encode(sections: &[SectionInfo]) -> Vec<u8> {
    let mut func = FUNC_INFO_SIZE.to_le_bytes().to_vec();
    let mut line = LINE_INFO_SIZE.to_le_bytes().to_vec();
    for s in sections.iter().filter(|s| !s.funcs.is_empty()) {
        func.extend_from_slice(&s.name_off.to_le_bytes());
        func.extend_from_slice(&(s.funcs.len() as u32).to_le_bytes());
        for &(insn, ty) in &s.funcs {
            func.extend_from_slice(&(insn * 8).to_le_bytes());
            func.extend_from_slice(&ty.to_le_bytes());
        }
    }
    for s in sections.iter().filter(|s| !s.lines.is_empty()) {
        line.extend_from_slice(&s.name_off.to_le_bytes());
        line.extend_from_slice(&(s.lines.len() as u32).to_le_bytes());
        let bytes: Vec<LineInfo> = s
            .lines
            .iter()
            .map(|l| LineInfo {
                insn: l.insn * 8,
                ..*l
            })
            .collect();
        line.extend_from_slice(&encode_line_info(&bytes));
    }
    let hdr_len = 32u32;
    let mut out = Vec::with_capacity(hdr_len as usize + func.len() + line.len());
    out.extend_from_slice(&0xeb9fu16.to_le_bytes());
    out.push(1); // version
    out.push(0); // flags
    for v in [
        hdr_len,
        0,
        func.len() as u32,
        func.len() as u32,
        line.len() as u32,
        (func.len() + line.len()) as u32, // core_relo_off
        0,                                // core_relo_len
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&func);
    out.extend_from_slice(&line);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_bytes_and_header_is_32() {
        let ext = encode(&[SectionInfo {
            name_off: 5,
            funcs: vec![(0, 3), (4, 7)],
            lines: vec![LineInfo {
                insn: 2,
                file: 1,
                line_text: 9,
                line: 3,
                column: 1,
            }],
        }]);
        let u = |at: usize| u32::from_le_bytes(ext[at..at + 4].try_into().unwrap());
        assert_eq!(u(4), 32, "hdr_len");
        assert_eq!((u(8), u(12)), (0, 4 + 8 + 16), "func_info off/len");
        assert_eq!((u(16), u(20)), (28, 4 + 8 + 16), "line_info off/len");
        // func_info: rec_size 8, section 5 with 2 records, second at byte 32.
        assert_eq!((u(32), u(36), u(40)), (8, 5, 2));
        assert_eq!((u(52), u(56)), (32, 7));
        // line_info: rec_size 16, section 5, one record at byte 16.
        assert_eq!((u(60), u(64), u(68), u(72)), (16, 5, 1, 16));
    }
}
