//! Image inputs for vision-language models (Qwen3-VL and the like): one image per request, sent
//! as a chat `image_url` content part holding a base64 `data:` URL, the form vLLM's
//! OpenAI-compatible server takes without fetching anything.
//!
//! The image is a file (PNG, JPEG, GIF or WebP, its type read from its first bytes) or a
//! synthetic `WxH` PNG: a colour gradient, written here with stored (uncompressed) deflate
//! blocks so that its size is what its pixels are, without an image library.

use base64::Engine as _;

/// One image, ready to go into every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Image {
    /// What the run file records: `synthetic 448x448 PNG (602 KB)` or the file's name and size.
    pub(crate) label: String,
    /// `data:image/…;base64,…`
    pub data_url: String,
}

/// The media type of image bytes from their signature.
pub(crate) fn media_type(bytes: &[u8]) -> Option<&'static str> {
    match bytes {
        [0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, ..] => Some("image/png"),
        [0xff, 0xd8, 0xff, ..] => Some("image/jpeg"),
        [b'G', b'I', b'F', b'8', ..] => Some("image/gif"),
        [b'R', b'I', b'F', b'F', _, _, _, _, b'W', b'E', b'B', b'P', ..] => Some("image/webp"),
        _ => None,
    }
}

fn data_url(media: &str, bytes: &[u8]) -> String {
    format!("data:{media};base64,{}", base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `WxH` (both 1..=8192), as `--image` takes a synthetic size.
pub fn parse_size(text: &str) -> Option<(u32, u32)> {
    let (w, h) = text.split_once(['x', 'X'])?;
    let (w, h) = (w.parse::<u32>().ok()?, h.parse::<u32>().ok()?);
    ((1..=8192).contains(&w) && (1..=8192).contains(&h)).then_some((w, h))
}

/// A synthetic `w`×`h` RGB PNG.
pub fn synthetic(w: u32, h: u32) -> Image {
    let png = png_rgb(w, h);
    Image { label: format!("synthetic {w}x{h} PNG ({} KB)", png.len().div_ceil(1024)), data_url: data_url("image/png", &png) }
}

/// An image file's bytes (`name` only labels it); an error says what is wrong with them.
pub fn from_file(name: &str, bytes: &[u8]) -> Result<Image, String> {
    let media = media_type(bytes).ok_or_else(|| "not a PNG, JPEG, GIF or WebP image (its first bytes say neither)".to_owned())?;
    Ok(Image { label: format!("{name} ({media}, {} KB)", bytes.len().div_ceil(1024)), data_url: data_url(media, bytes) })
}

/// Decodes a `data:image/…;base64,…` URL: its media type and bytes (the stand-in checks what it
/// was sent with it).
pub(crate) fn decode_data_url(url: &str) -> Result<(&str, Vec<u8>), String> {
    let rest = url.strip_prefix("data:").ok_or("not a `data:` URL")?;
    let (media, b64) = rest.split_once(";base64,").ok_or("not base64 (`;base64,` missing)")?;
    if !media.starts_with("image/") {
        return Err(format!("media type `{media}` is not an image"));
    }
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).map_err(|e| format!("bad base64: {e}"))?;
    if media_type(&bytes) != Some(media) {
        return Err(format!("the bytes are not {media}"));
    }
    Ok((media, bytes))
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

fn png_rgb(w: u32, h: u32) -> Vec<u8> {
    // Scanlines: filter byte 0, then RGB (a gradient, so a model sees more than a flat colour).
    let mut raw = Vec::with_capacity((h * (1 + 3 * w)) as usize);
    for y in 0..h {
        raw.push(0);
        for x in 0..w {
            raw.extend_from_slice(&[(x * 255 / w.max(1)) as u8, (y * 255 / h.max(1)) as u8, ((x + y) % 256) as u8]);
        }
    }
    // zlib: header, stored deflate blocks of at most 65535 bytes, Adler-32.
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::with_capacity(13);
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]); // 8-bit RGB, deflate, no interlace
    png_chunk(&mut out, b"IHDR", &ihdr);
    png_chunk(&mut out, b"IDAT", &z);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_of_a_known_string() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
