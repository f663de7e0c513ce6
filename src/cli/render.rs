//! `labelhub render`: renders one label to a preview PNG with the same
//! renderer the hub prints with.
//!
//! ```text
//! labelhub render --model PT-P750W --media 12 --content-type qr_two_lines \
//!     --data '{"qr_payload":"https://x.y/1","primary_id":"A-1","title":"Box"}' -o label.png
//! labelhub render --model QL-820NWB --media 62 --content-type image --image logo.png \
//!     --data '{"image_mode":"dither"}' -o label.png
//! ```

use std::path::PathBuf;

use lexopt::prelude::*;

use super::CliError;
use crate::render::{self, ContentType, LabelData, Target, MAX_IMAGE_BYTES};

const HELP: &str = "\
labelhub render: render one label to a preview PNG

USAGE:
    labelhub render --model MODEL --media MEDIA --content-type TYPE [OPTIONS] -o OUT.png

OPTIONS:
    --model MODEL          printer model, e.g. PT-P750W, QL-820NWB
    --media MEDIA          medium id, e.g. 12, 24, 62, 62red, 29x90
    --content-type TYPE    {content_types}
    --data JSON            label data, e.g. '{\"primary_id\":\"A-1\",\"title\":\"Box\"}'
    --data-file FILE       label data read from a JSON file
    --image FILE           PNG or JPEG for the image content type
    --ascii                also print the black layer as text (# = ink)
    -o, --output FILE      where to write the preview PNG";

struct Args {
    model: String,
    media: String,
    content_type: ContentType,
    data: LabelData,
    image: Option<PathBuf>,
    output: PathBuf,
    ascii: bool,
}

fn parse(mut parser: lexopt::Parser) -> Result<Args, CliError> {
    let (mut model, mut media, mut ct, mut output) = (None, None, None, None);
    let (mut data_json, mut image, mut ascii) = (None, None, false);
    while let Some(arg) = parser.next()? {
        match arg {
            Long("model") => model = Some(parser.value()?.string()?),
            Long("media") => media = Some(parser.value()?.string()?),
            Long("content-type") => {
                let name = parser.value()?.string()?;
                ct =
                    Some(ContentType::parse(&name).ok_or_else(|| {
                        CliError::Usage(format!("unknown content type `{name}`"))
                    })?);
            }
            Long("data") => data_json = Some(parser.value()?.string()?),
            Long("data-file") => {
                let path = PathBuf::from(parser.value()?);
                let text = std::fs::read(&path)
                    .map_err(|e| CliError::Failed(format!("{}: {e}", path.display())))?;
                let text = String::from_utf8(text)
                    .map_err(|_| CliError::Failed(format!("{}: not UTF-8 text", path.display())))?;
                data_json = Some(text);
            }
            Long("image") => image = Some(PathBuf::from(parser.value()?)),
            Long("ascii") => ascii = true,
            Short('o') | Long("output") => output = Some(PathBuf::from(parser.value()?)),
            Short('h') | Long("help") => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(CliError::Usage(other.unexpected().to_string())),
        }
    }
    let missing = |what: &str| CliError::Usage(format!("missing {what}"));
    let data = match data_json {
        Some(json) => serde_json::from_str(&json)
            .map_err(|e| CliError::Usage(format!("--data is not valid label data: {e}")))?,
        None => LabelData::default(),
    };
    Ok(Args {
        model: model.ok_or_else(|| missing("--model"))?,
        media: media.ok_or_else(|| missing("--media"))?,
        content_type: ct.ok_or_else(|| missing("--content-type"))?,
        data,
        image,
        output: output.ok_or_else(|| missing("-o OUT.png"))?,
        ascii,
    })
}

pub fn run(parser: lexopt::Parser) -> Result<(), CliError> {
    let mut args = parse(parser)?;
    if let Some(path) = &args.image {
        let failed = |e: String| CliError::Failed(format!("{}: {e}", path.display()));
        let len = std::fs::metadata(path)
            .map_err(|e| failed(e.to_string()))?
            .len();
        if len > MAX_IMAGE_BYTES as u64 {
            return Err(failed(format!(
                "{len} bytes; images are limited to {MAX_IMAGE_BYTES} bytes"
            )));
        }
        let bytes = std::fs::read(path).map_err(|e| failed(e.to_string()))?;
        args.data.image = Some(render::encode_base64(&bytes));
    }
    let rendered = Target::lookup(&args.model, &args.media).and_then(|target| {
        render::render(args.content_type, &args.data, &target).map(|p| (p, target))
    });
    let (page, target) = rendered.map_err(|e| CliError::Failed(format!("{e} [{}]", e.code())))?;
    let png = render::to_png(&page);
    std::fs::write(&args.output, png)
        .map_err(|e| CliError::Failed(format!("{}: {e}", args.output.display())))?;
    if args.ascii {
        print!("{}", page.black.to_ascii());
    }
    let (w, h) = (page.black.width(), page.black.height());
    let mm = w as f32 * 25.4 / target.geometry.dpi_feed as f32;
    eprintln!(
        "{}: {} on {} {}: {w} x {h} dots ({mm:.1} mm long){}",
        args.output.display(),
        args.content_type.as_str(),
        target.model.name,
        target.geometry.media.describe(),
        if page.red.is_some() {
            ", black + red"
        } else {
            ""
        }
    );
    Ok(())
}

/// The help text (`HELP` with the content types from the renderer's name
/// table, wrapped under the option descriptions), for `format!("{USAGE}")`.
const USAGE: Usage = Usage;

struct Usage;

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = String::new();
        let mut column = 27;
        for (i, name) in ContentType::NAMES.iter().enumerate() {
            let comma = if i + 1 < ContentType::NAMES.len() {
                ","
            } else {
                ""
            };
            if column > 27 && column + 1 + name.len() + comma.len() > 80 {
                list.push_str(&format!("\n{:27}", ""));
                column = 27;
            } else if column > 27 {
                list.push(' ');
                column += 1;
            }
            list.push_str(name);
            list.push_str(comma);
            column += name.len() + comma.len();
        }
        f.write_str(&HELP.replace("{content_types}", &list))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn help_lists_every_content_type_as_before() {
        let help = super::USAGE.to_string();
        assert!(help.contains(
            "    --content-type TYPE    qr_only, qr_one_line, qr_two_lines, qr_three_lines,
                           text_one_line, text_two_lines, qr_with_listing,
                           barcode_one_line, barcode_two_lines,
                           datamatrix_two_lines, image
    --data JSON"
        ));
    }
}
