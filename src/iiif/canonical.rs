//! Canonical URI forms (Image API 3.0 §4.7, 2.1 §4.7): the one path a static Level 0 service holds for a
//! request, so that clients which build canonical requests (viewers asking for tiles and `sizes`) find the file.

use super::parse::fmt_float;
use super::region::Rect;
use super::{ApiVersion, Format, Quality, ResolvedRegion, ResolvedRequest};

/// The canonical region: `full` when it is the whole image, otherwise `x,y,w,h` in pixels.
pub fn region(rect: Rect, image: (u32, u32)) -> String {
    if rect.x == 0 && rect.y == 0 && (rect.w, rect.h) == image {
        "full".into()
    } else {
        format!("{},{},{},{}", rect.x, rect.y, rect.w, rect.h)
    }
}

/// The canonical size of an output of `size` from a region of `region` pixels: `max` (3.0) or `full` (2.1)
/// when it is the region at full size; otherwise `w,h` (3.0, `^w,h` when larger than the region) or `w,`
/// (2.1, or `w,h` when the aspect ratio is not the region's as `w,` would compute it).
pub fn size(size: (u32, u32), region: (u32, u32), api: ApiVersion) -> String {
    let (w, h) = size;
    match api {
        ApiVersion::V3 if size == region => "max".into(),
        ApiVersion::V3 if w > region.0 || h > region.1 => format!("^{w},{h}"),
        ApiVersion::V3 => format!("{w},{h}"),
        ApiVersion::V2 if size == region => "full".into(),
        ApiVersion::V2 => {
            // `w,` keeps the aspect ratio, rounding the height as this tool's `w,` does.
            let kept = (f64::from(region.1) * f64::from(w) / f64::from(region.0.max(1))).round();
            if kept as u32 == h {
                format!("{w},")
            } else {
                format!("{w},{h}")
            }
        }
    }
}

/// The canonical size of a tile or a `sizes` entry, as viewers request them: always `w,h` (3.0) or `w,`
/// (2.1), even at full resolution, except that the whole image at full size is `max` / `full`.
pub fn tile_size(size: (u32, u32), whole_image_at_full_size: bool, api: ApiVersion) -> String {
    match (api, whole_image_at_full_size) {
        (ApiVersion::V3, true) => "max".into(),
        (ApiVersion::V2, true) => "full".into(),
        (ApiVersion::V3, false) => format!("{},{}", size.0, size.1),
        (ApiVersion::V2, false) => format!("{},", size.0),
    }
}

/// The canonical path (`region/size/rotation/quality.format`) of a resolved request on an image of `image`
/// pixels (upright), written as `format`; `None` when the request has no IIIF form: go-iiif's smart crop (its
/// region is found from the pixels), rotation `-1` on a turned source, and the extension qualities.
pub fn path(
    req: &ResolvedRequest,
    image: (u32, u32),
    format: Format,
    api: ApiVersion,
) -> Option<String> {
    let ResolvedRegion::Rect(rect) = req.region else {
        return None;
    };
    let quality = match req.quality {
        Quality::Default => "default",
        Quality::Color => "color",
        Quality::Gray => "gray",
        Quality::Bitonal => "bitonal",
        Quality::Dither | Quality::Crisp(_) => return None,
    };
    if format == Format::Source {
        return None;
    }
    let rotation = format!(
        "{}{}",
        if req.mirror { "!" } else { "" },
        fmt_float(req.degrees)
    );
    Some(format!(
        "{}/{}/{rotation}/{quality}.{}",
        region(rect, image),
        size(req.size, (rect.w, rect.h), api),
        format.extension()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::iiif::ImageRequest;

    fn canonical(req: &str, w: u32, h: u32, api: ApiVersion) -> Option<String> {
        let p: Vec<&str> = req.split('/').collect();
        let (quality, format) = p[3].split_once('.').unwrap();
        let r = ImageRequest::parse(p[0], p[1], p[2], quality, format).unwrap();
        let resolved = r.resolve(w, h, api).unwrap();
        path(&resolved, (w, h), r.format, api)
    }

    #[test]
    fn the_specs_examples() {
        use ApiVersion::{V2, V3};
        // 3.0 §4.7 and 2.1 §4.7: full region, sizes as w,h (3.0) or w, (2.1), max/full at full size.
        assert_eq!(
            canonical("full/max/0/default.jpg", 6000, 4000, V3).unwrap(),
            "full/max/0/default.jpg"
        );
        assert_eq!(
            canonical("full/full/0/default.jpg", 6000, 4000, V2).unwrap(),
            "full/full/0/default.jpg"
        );
        assert_eq!(
            canonical("0,0,6000,4000/pct:50/0/default.jpg", 6000, 4000, V3).unwrap(),
            "full/3000,2000/0/default.jpg"
        );
        assert_eq!(
            canonical("full/!300,300/0/default.jpg", 6000, 4000, V2).unwrap(),
            "full/300,/0/default.jpg"
        );
        assert_eq!(
            canonical("pct:0,0,50,50/,100/90.0/gray.png", 6000, 4000, V3).unwrap(),
            "0,0,3000,2000/150,100/90/gray.png"
        );
        assert_eq!(
            canonical("125,15,120,140/90,/!0/default.jpg", 6000, 4000, V2).unwrap(),
            "125,15,120,140/90,/!0/default.jpg"
        );
        // A distorted size keeps both numbers under 2.1; an upscale is marked under 3.0.
        assert_eq!(
            canonical("full/300,100/0/default.jpg", 6000, 4000, V2).unwrap(),
            "full/300,100/0/default.jpg"
        );
        assert_eq!(
            canonical("0,0,100,100/^200,200/0/default.jpg", 6000, 4000, V3).unwrap(),
            "0,0,100,100/^200,200/0/default.jpg"
        );
        // No IIIF form: smart crops, go-iiif's extension qualities.
        assert_eq!(
            canonical("-1,-1,320,320/full/0/default.jpg", 6000, 4000, V2),
            None
        );
    }

    #[test]
    fn tile_sizes_name_both_numbers_or_the_width() {
        assert_eq!(tile_size((512, 512), false, ApiVersion::V3), "512,512");
        assert_eq!(tile_size((512, 300), false, ApiVersion::V2), "512,");
        assert_eq!(tile_size((400, 300), true, ApiVersion::V3), "max");
        assert_eq!(tile_size((400, 300), true, ApiVersion::V2), "full");
    }
}
