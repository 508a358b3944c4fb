//! go-iiif's palette service: go-colours 0.12's extruders (`vibrant`, a port of Android's Palette over
//! RobCherry/vibrant; `marekm4`; `quant`, soniakeys' mean cut), each swatch with its nearest colour of each named
//! palette (crayola, css3, css4) on the euclidian grid.
//!
//! As go-iiif prints them, a swatch's `name` and `hex` are both its own hex and `reference` is the extruder
//! ("vibrant", "marekm4", "quant"); the palette names live in `closest`, one entry per configured palette, each
//! `{"name", "hex", "reference": "<palette>"}`. With several extruders, their swatches follow one another in the
//! configured order.
//!
//! This is go-iiif v8's vibrant selection (go-colours 0.12): the quantiser's boxes themselves ([`vibrant`]).
//! go-iiif up to v7 chose Android Palette's six targets instead; no setting asks for that, so it is not here.

use super::colour_names::{CRAYOLA, CSS3, CSS4};
use super::{marekm4, quant};
pub use crate::report::Swatch;
use image::RgbImage;
use std::borrow::Cow;

/// A go-colours extruder: how colours are drawn from the pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extruder {
    Vibrant,
    Marekm4,
    Quant,
}

impl Extruder {
    /// The extruder for a name as go-iiif configures it: `vibrant` (v6/v7 `extruder.name`) or `vibrant://` (v8
    /// `extruders[].uri`), likewise `marekm4`, `quant`.
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        let name = name.strip_suffix("://").unwrap_or(name);
        match name.to_ascii_lowercase().as_str() {
            "vibrant" => Some(Self::Vibrant),
            "marekm4" => Some(Self::Marekm4),
            "quant" => Some(Self::Quant),
            _ => None,
        }
    }

    /// The `reference` go-colours gives this extruder's swatches.
    pub fn reference(self) -> &'static str {
        match self {
            Self::Vibrant => "vibrant",
            Self::Marekm4 => "marekm4",
            Self::Quant => "quant",
        }
    }

    /// Up to `count` colours of `img`, in this extruder's order.
    fn colours(self, img: &RgbImage, count: usize) -> Vec<[u8; 3]> {
        match self {
            Self::Vibrant => vibrant_colours(img, count),
            Self::Marekm4 => marekm4::colours(img, count),
            Self::Quant => quant::colours(img, count),
        }
    }
}

/// Every configured extruder's swatches, one extruder after another, each with the nearest colour of every
/// palette in `closest`.
pub fn extract(
    img: &RgbImage,
    extruders: &[(Extruder, usize)],
    palettes: &[NamedPalette],
) -> Vec<Swatch> {
    extruders
        .iter()
        .flat_map(|&(e, count)| {
            e.colours(img, count)
                .into_iter()
                .map(move |rgb| swatch(rgb, e.reference(), palettes))
        })
        .collect()
}

/// A named colour list for naming swatches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NamedPalette {
    Crayola,
    Css3,
    Css4,
}

impl NamedPalette {
    /// The palette for a name as go-iiif configures it: `crayola`, `css3`, `css4`, or their URI forms
    /// `crayola://`, … (v8's `palette_service.palettes[].uri`).
    pub fn from_name(name: &str) -> Option<Self> {
        let name = name.trim();
        let name = name.strip_suffix("://").unwrap_or(name);
        match name.to_ascii_lowercase().as_str() {
            "crayola" => Some(Self::Crayola),
            "css3" => Some(Self::Css3),
            "css4" => Some(Self::Css4),
            _ => None,
        }
    }

    /// The `reference` go-colours gives colours of this palette.
    pub fn reference(self) -> &'static str {
        match self {
            Self::Crayola => "crayola",
            Self::Css3 => "css3",
            Self::Css4 => "css4",
        }
    }

    fn colours(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::Crayola => CRAYOLA,
            Self::Css3 => CSS3,
            Self::Css4 => CSS4,
        }
    }

    /// The palette colour nearest `rgb` by squared euclidian distance in 8-bit RGB. Ties go to the colour listed
    /// last, because go-colours keys its candidates by distance in a map that later entries overwrite.
    pub fn closest(self, rgb: [u8; 3]) -> Swatch {
        let mut best: Option<(i32, &str, &str)> = None;
        for &(hex, name) in self.colours() {
            let c = parse_hex(hex);
            let d: i32 = (0..3)
                .map(|i| {
                    let e = i32::from(c[i]) - i32::from(rgb[i]);
                    e * e
                })
                .sum();
            if best.is_none_or(|(bd, _, _)| d <= bd) {
                best = Some((d, hex, name));
            }
        }
        let (_, hex, name) = best.expect("named palettes are not empty");
        Swatch {
            name: name.to_string(),
            hex: hex.to_string(),
            reference: self.reference().to_string(),
            closest: Vec::new(),
        }
    }
}

/// Extract up to `count` vibrant swatches as go-iiif v8 does; with `Some(palette)` each carries that palette's
/// nearest colour in `closest`.
#[cfg(test)]
pub fn vibrant(img: &RgbImage, count: usize, names: Option<NamedPalette>) -> Vec<Swatch> {
    vibrant_with_palettes(img, count, names.as_slice())
}

/// [`vibrant`] with any number of palettes.
#[cfg(test)]
pub fn vibrant_with_palettes(
    img: &RgbImage,
    count: usize,
    palettes: &[NamedPalette],
) -> Vec<Swatch> {
    extract(img, &[(Extruder::Vibrant, count)], palettes)
}

/// go-colours 0.12 asks the quantiser for `count` colours and reports every box it returns, largest colour
/// volume first. Any image size is accepted: larger than 320x320 in area, it is first scaled down exactly as
/// vibrant does, so handing over the full source reproduces go-iiif most closely.
fn vibrant_colours(img: &RgbImage, count: usize) -> Vec<[u8; 3]> {
    let max = u32::try_from(count).unwrap_or(u32::MAX);
    let scaled = scale_down(img);
    quantize(&scaled, max)
        .into_iter()
        .take(count)
        .map(|q| q.rgb)
        .collect()
}

fn swatch(rgb: [u8; 3], reference: &str, palettes: &[NamedPalette]) -> Swatch {
    let hex = format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2]);
    Swatch {
        name: hex.clone(),
        hex,
        reference: reference.to_string(),
        closest: palettes.iter().map(|p| p.closest(rgb)).collect(),
    }
}

fn parse_hex(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap_or(0);
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

// ---- Scaling: vibrant scales images above 320x320 in area with x/image/draw's ApproxBiLinear. ----

const RESIZE_AREA: u64 = 320 * 320;

/// vibrant's `ScaleImageDown` into an NRGBA image, reproducing ApproxBiLinear's float arithmetic on 16-bit
/// samples and Go's conversion back to 8-bit NRGBA.
fn scale_down(img: &RgbImage) -> Cow<'_, RgbImage> {
    let (sw, sh) = img.dimensions();
    let area = u64::from(sw) * u64::from(sh);
    if area <= RESIZE_AREA {
        return Cow::Borrowed(img);
    }
    let ratio = (RESIZE_AREA as f64 / area as f64).sqrt();
    let dw = (f64::from(sw) * ratio).floor() as u32;
    let dh = (f64::from(sh) * ratio).floor() as u32;
    let mut out = RgbImage::new(dw, dh);
    if dw == 0 || dh == 0 {
        return Cow::Owned(out);
    }
    let xscale = f64::from(sw) / f64::from(dw);
    let yscale = f64::from(sh) / f64::from(dh);
    let sample = |x: u32, y: u32, c: usize| f64::from(img.get_pixel(x, y)[c]) * 257.0;
    for dy in 0..dh {
        let (sy0, sy1, yf0, yf1) = abl_coords(dy, yscale, sh);
        for dx in 0..dw {
            let (sx0, sx1, xf0, xf1) = abl_coords(dx, xscale, sw);
            // Alpha goes through the same weights; it can land just under 0xffff, which changes Go's
            // un-premultiplication below.
            let blend = |v00: f64, v10: f64, v01: f64, v11: f64| {
                let top = xf1 * v00 + xf0 * v10;
                let bottom = xf1 * v01 + xf0 * v11;
                (yf1 * top + yf0 * bottom) as u16
            };
            let a = u32::from(blend(65535.0, 65535.0, 65535.0, 65535.0));
            let mut px = [0u8; 3];
            for (c, p) in px.iter_mut().enumerate() {
                let v = u32::from(blend(
                    sample(sx0, sy0, c),
                    sample(sx1, sy0, c),
                    sample(sx0, sy1, c),
                    sample(sx1, sy1, c),
                ));
                *p = match a {
                    0xffff => (v >> 8) as u8,
                    0 => 0,
                    _ => ((v * 0xffff / a) >> 8) as u8,
                };
            }
            out.put_pixel(dx, dy, image::Rgb(px));
        }
    }
    Cow::Owned(out)
}

/// Source coordinates and weights of ApproxBiLinear for one destination index.
fn abl_coords(d: u32, scale: f64, len: u32) -> (u32, u32, f64, f64) {
    let s = (f64::from(d) + 0.5) * scale - 0.5;
    // Truncation toward zero, as Go's int32(float); negative values are clamped just below.
    let s0 = s as i64;
    let last = i64::from(len) - 1;
    if s < 0.0 {
        (0, 0, 0.0, 1.0)
    } else if s0 + 1 > last {
        (last as u32, last as u32, 1.0, 0.0)
    } else {
        let f0 = s - s0 as f64;
        (s0 as u32, (s0 + 1) as u32, f0, 1.0 - f0)
    }
}

// ---- Quantisation: vibrant's ColorCutQuantizer (5 bits a channel, boxes split by colour volume). ----

const QUANT_BITS: u32 = 5;
const QUANT_MASK: u16 = (1 << QUANT_BITS) - 1;

/// A quantiser output: its 8-bit colour and how many pixels it stands for.
#[derive(Clone, Copy, Debug, PartialEq)]
struct QSwatch {
    rgb: [u8; 3],
    population: u32,
}

fn quantize_channel(v: u8) -> u16 {
    // vibrant's rounding: when bit 2 is set it sets bit 3, then keeps the top five bits.
    let v = if v & 4 == 4 { v | 8 } else { v };
    u16::from(v >> 3) & QUANT_MASK
}

fn q_rgb(q: u16) -> [u8; 3] {
    [
        (q >> 10) & QUANT_MASK,
        (q >> 5) & QUANT_MASK,
        q & QUANT_MASK,
    ]
    .map(|c| c as u8)
}

fn approx_rgb(q: u16) -> [u8; 3] {
    q_rgb(q).map(|c| c << 3)
}

/// HSL saturation and lightness as vibrant computes them.
fn sat_light(rgb: [u8; 3]) -> (f64, f64) {
    let [r, g, b] = rgb.map(|c| f64::from(c) / 255.0);
    let min = r.min(g).min(b);
    let max = r.max(g).max(b);
    let l = (max + min) / 2.0;
    let s = if min == max {
        0.0
    } else if l < 0.5 {
        (max - min) / (max + min)
    } else {
        (max - min) / (2.0 - max - min)
    };
    (s, l)
}

/// vibrant's default filter: nothing within 5% of black or white lightness.
fn rgb_allowed(rgb: [u8; 3]) -> bool {
    let (_, l) = sat_light(rgb);
    l > 0.05 && l < 0.95
}

fn quantized_allowed(q: u16) -> bool {
    // The filter's fast path: every channel in the black mask (<= 1) or every channel in the white mask (>= 30).
    const BLACK: u16 = (1 << 10) | (1 << 5) | 1;
    const WHITE: u16 = (30 << 10) | (30 << 5) | 30;
    if q | BLACK == BLACK || q & WHITE == WHITE {
        return false;
    }
    rgb_allowed(approx_rgb(q))
}

/// A box around part of the sorted colour list.
#[derive(Clone, Copy, Debug)]
struct VBox {
    lower: usize,
    upper: usize,
    min: [u32; 3],
    max: [u32; 3],
    population: u32,
}

impl VBox {
    fn new(colors: &[u16], hist: &[u32], lower: usize, upper: usize) -> Self {
        let mut b = VBox {
            lower,
            upper,
            min: [0; 3],
            max: [0; 3],
            population: 0,
        };
        b.fit(colors, hist);
        b
    }

    fn fit(&mut self, colors: &[u16], hist: &[u32]) {
        let mut min = [31u32; 3];
        let mut max = [0u32; 3];
        let mut pop = 0u32;
        for &c in &colors[self.lower..=self.upper] {
            pop = pop.wrapping_add(hist[c as usize]);
            for (i, v) in q_rgb(c).into_iter().enumerate() {
                min[i] = min[i].min(u32::from(v));
                max[i] = max[i].max(u32::from(v));
            }
        }
        self.min = min;
        self.max = max;
        self.population = pop;
    }

    fn volume(&self) -> u32 {
        (0..3).map(|i| self.max[i] - self.min[i] + 1).product()
    }

    /// Sort the box's colours along its longest side and split near the population's midpoint.
    fn split(&mut self, colors: &mut [u16], hist: &[u32]) -> VBox {
        let len = [0, 1, 2].map(|i| self.max[i] - self.min[i]);
        let slice = &mut colors[self.lower..=self.upper];
        if len[0] >= len[1] && len[0] >= len[2] {
            slice.sort_unstable();
        } else if len[1] >= len[0] && len[1] >= len[2] {
            slice.sort_unstable_by_key(|&c| swap_fields(c, 10, 5));
        } else {
            slice.sort_unstable_by_key(|&c| swap_fields(c, 10, 0));
        }
        // Colours are distinct, so vibrant's "do not split one colour across boxes" guards never move an index;
        // they are kept for fidelity.
        let mut search_upper = self.upper - 1;
        while search_upper > self.lower && colors[search_upper] == colors[self.upper] {
            search_upper -= 1;
        }
        let mid = self.population / 2;
        let mut count = 0u32;
        let mut i = self.lower;
        while i < search_upper {
            count = count.wrapping_add(hist[colors[i] as usize]);
            if count >= mid {
                while colors[i] == colors[i + 1] {
                    i += 1;
                }
                break;
            }
            i += 1;
        }
        let other = VBox::new(colors, hist, i + 1, self.upper);
        self.upper = i;
        self.fit(colors, hist);
        other
    }

    fn average(&self, colors: &[u16], hist: &[u32]) -> QSwatch {
        let mut total = [0u64; 3];
        for &c in &colors[self.lower..=self.upper] {
            let pop = u64::from(hist[c as usize]);
            for (t, v) in total.iter_mut().zip(q_rgb(c)) {
                *t += pop * u64::from(v);
            }
        }
        let pop = f64::from(self.population.max(1));
        // Go's uint8(x + 0.5): round half up by truncation.
        let rgb = total.map(|t| ((((t << (8 - QUANT_BITS)) as f64) / pop) + 0.5) as u8);
        QSwatch {
            rgb,
            population: self.population,
        }
    }
}

/// Swap two 5-bit fields of a quantised colour (vibrant sorts on the swapped value).
fn swap_fields(c: u16, a: u32, b: u32) -> u16 {
    let fa = (c >> a) & QUANT_MASK;
    let fb = (c >> b) & QUANT_MASK;
    (c & !((QUANT_MASK << a) | (QUANT_MASK << b))) | (fa << b) | (fb << a)
}

/// Go's container/heap over boxes, largest volume first; reproduced step for step because the order boxes of
/// equal volume come out in is the report's order.
struct BoxHeap(Vec<VBox>);

impl BoxHeap {
    fn less(&self, i: usize, j: usize) -> bool {
        self.0[i].volume() > self.0[j].volume()
    }

    fn push(&mut self, b: VBox) {
        self.0.push(b);
        let mut j = self.0.len() - 1;
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.0.swap(i, j);
            j = i;
        }
    }

    fn pop(&mut self) -> Option<VBox> {
        let n = self.0.len().checked_sub(1)?;
        self.0.swap(0, n);
        let mut i = 0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.0.swap(i, j);
            i = j;
        }
        self.0.pop()
    }
}

/// vibrant's `ColorCutQuantizer.Swatches`: at most `max` swatches in its order.
fn quantize(img: &RgbImage, max: u32) -> Vec<QSwatch> {
    if max == 0 {
        return Vec::new();
    }
    let mut hist = vec![0u32; 1 << (3 * QUANT_BITS)];
    for p in img.pixels() {
        let q =
            (quantize_channel(p[0]) << 10) | (quantize_channel(p[1]) << 5) | quantize_channel(p[2]);
        hist[q as usize] += 1;
    }
    let mut colors: Vec<u16> = Vec::new();
    for (q, n) in hist.iter_mut().enumerate() {
        if *n > 0 {
            if quantized_allowed(q as u16) {
                colors.push(q as u16);
            } else {
                *n = 0;
            }
        }
    }
    if colors.len() <= max as usize {
        return colors
            .iter()
            .map(|&q| QSwatch {
                rgb: approx_rgb(q),
                population: hist[q as usize],
            })
            .collect();
    }
    let mut heap = BoxHeap(Vec::with_capacity(max as usize));
    let last = colors.len() - 1;
    heap.push(VBox::new(&colors, &hist, 0, last));
    while (heap.0.len() as u64) < u64::from(max) {
        let Some(mut b) = heap.pop() else { break };
        if b.volume() > 1 {
            let other = b.split(&mut colors, &hist);
            heap.push(other);
            heap.push(b);
        } else {
            // vibrant drops a box it cannot split and stops splitting.
            break;
        }
    }
    let mut out = Vec::with_capacity(heap.0.len());
    while let Some(b) = heap.pop() {
        let s = b.average(&colors, &hist);
        if rgb_allowed(s.rgb) {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::Rgb;

    #[test]
    fn swatches_read_back_from_a_report() {
        // -skip-existing reads the services of the previous report: the nested swatches omit `closest`.
        let named = |name: &str| Swatch {
            name: name.into(),
            hex: "#714b23".into(),
            reference: "crayola".into(),
            closest: Vec::new(),
        };
        let s = Swatch {
            closest: vec![named("Raw Umber")],
            ..named("Raw Umber")
        };
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(serde_json::from_str::<Swatch>(&json).unwrap(), s);
    }

    /// Four vertical bands of the given colours.
    fn bands(colours: &[[u8; 3]], w: u32, h: u32) -> RgbImage {
        RgbImage::from_fn(w, h, |x, _| {
            Rgb(colours[(x * colours.len() as u32 / w) as usize])
        })
    }

    #[test]
    fn palette_names_parse() {
        assert_eq!(
            NamedPalette::from_name("crayola"),
            Some(NamedPalette::Crayola)
        );
        assert_eq!(NamedPalette::from_name("css4://"), Some(NamedPalette::Css4));
        assert_eq!(NamedPalette::from_name("CSS3"), Some(NamedPalette::Css3));
        assert_eq!(NamedPalette::from_name("css5"), None);
        assert_eq!(CRAYOLA.len(), 149);
        assert_eq!(CSS3.len(), 138);
        assert_eq!(CSS4.len(), 139);
    }

    #[test]
    fn closest_is_exact_and_prefers_last_on_ties() {
        let red = NamedPalette::Crayola.closest([0xee, 0x20, 0x4d]);
        assert_eq!(
            (red.name.as_str(), red.hex.as_str(), red.reference.as_str()),
            ("Red", "#ee204d", "crayola")
        );
        assert_eq!(NamedPalette::Css4.closest([255, 0, 0]).name, "red");
        // Equidistant from Burnt Sienna and Raw Sienna (350 each); Raw Sienna is listed later.
        assert_eq!(
            NamedPalette::Crayola.closest([229, 136, 78]).name,
            "Raw Sienna"
        );
        // Equidistant from grey and slategrey (128 each); slategrey is listed later.
        assert_eq!(
            NamedPalette::Css4.closest([120, 128, 136]).name,
            "slategrey"
        );
    }

    #[test]
    fn few_colours_are_reported_as_quantised() {
        let img = bands(
            &[[255, 0, 0], [0, 0, 255], [0, 128, 0], [255, 255, 0]],
            64,
            16,
        );
        let got = vibrant(&img, 5, Some(NamedPalette::Crayola));
        let hexes: Vec<&str> = got.iter().map(|s| s.hex.as_str()).collect();
        // Four distinct colours (fewer than asked) come back in quantised order at 5-bit precision.
        assert_eq!(hexes, ["#0000f8", "#008000", "#f80000", "#f8f800"]);
        for s in &got {
            assert_eq!(s.name, s.hex);
            assert_eq!(s.reference, "vibrant");
            assert_eq!(s.closest.len(), 1);
        }
        let names: Vec<&str> = got.iter().map(|s| s.closest[0].name.as_str()).collect();
        // Euclidian in RGB, so pure red is crayola's Orange Red (#ff2b2b), not its Red (#ee204d).
        assert_eq!(
            names,
            [
                "Violet Blue",
                "Tropical Rain Forest",
                "Orange Red",
                "Laser Lemon"
            ]
        );
        let json = serde_json::to_string(&got[2]).unwrap();
        assert_eq!(
            json,
            r##"{"name":"#f80000","hex":"#f80000","reference":"vibrant","closest":[{"name":"Orange Red","hex":"#ff2b2b","reference":"crayola"}]}"##
        );
    }

    #[test]
    fn no_palette_means_no_closest() {
        // 30 has bit 2 set, so vibrant rounds it up a step before keeping five bits: 0x18, while 200 stays 0xc8.
        let img = bands(&[[200, 30, 30]], 8, 8);
        let got = vibrant(&img, 5, None);
        assert_eq!(got.len(), 1);
        assert!(got[0].closest.is_empty());
        assert_eq!(
            serde_json::to_string(&got[0]).unwrap(),
            r##"{"name":"#c81818","hex":"#c81818","reference":"vibrant"}"##
        );
    }

    #[test]
    fn many_colours_are_cut_to_count() {
        let img = RgbImage::from_fn(200, 150, |x, y| {
            Rgb([(x * 255 / 199) as u8, (y * 255 / 149) as u8, 90])
        });
        let got = vibrant_with_palettes(&img, 5, &[NamedPalette::Crayola, NamedPalette::Css4]);
        assert_eq!(got.len(), 5);
        for s in &got {
            assert_eq!(s.hex.len(), 7);
            assert_eq!(s.closest.len(), 2);
            assert_eq!(s.closest[1].reference, "css4");
        }
        // Deterministic: the same input gives the same swatches.
        assert_eq!(
            got,
            vibrant_with_palettes(&img, 5, &[NamedPalette::Crayola, NamedPalette::Css4])
        );
    }

    #[test]
    fn black_and_white_are_filtered() {
        let img = bands(&[[0, 0, 0], [255, 255, 255]], 10, 10);
        assert!(vibrant(&img, 5, None).is_empty());
    }

    #[test]
    fn tiny_and_empty_inputs_do_not_panic() {
        let one = RgbImage::from_pixel(1, 1, Rgb([10, 200, 30]));
        assert_eq!(vibrant(&one, 5, None).len(), 1);
        assert!(vibrant(&one, 0, None).is_empty());
        let empty = RgbImage::new(0, 0);
        assert!(vibrant(&empty, 5, None).is_empty());
        // Wider than the resize area allows at one pixel high: scales to nothing.
        let strip = RgbImage::from_pixel(200_000, 1, Rgb([10, 200, 30]));
        assert!(vibrant(&strip, 5, None).is_empty());
    }

    #[test]
    fn large_images_are_scaled_like_vibrant() {
        let img = bands(&[[255, 0, 0], [0, 0, 255]], 640, 480);
        let scaled = scale_down(&img);
        // sqrt(102400 / 307200) scales 640x480 to 369x277.
        assert_eq!(scaled.dimensions(), (369, 277));
        assert_eq!(scaled.get_pixel(0, 0), &Rgb([255, 0, 0]));
        let got = vibrant(&img, 5, None);
        assert!(got.iter().any(|s| s.hex == "#f80000"));
        assert!(got.iter().any(|s| s.hex == "#0000f8"));
    }

    #[test]
    fn heap_pops_largest_first() {
        let mk = |v: u32| VBox {
            lower: 0,
            upper: 0,
            min: [0; 3],
            max: [v - 1, 0, 0],
            population: 0,
        };
        let mut h = BoxHeap(Vec::new());
        for v in [3, 9, 1, 7, 7, 2] {
            h.push(mk(v));
        }
        let order: Vec<u32> = std::iter::from_fn(|| h.pop()).map(|b| b.volume()).collect();
        assert_eq!(order, [9, 7, 7, 3, 2, 1]);
    }
}
