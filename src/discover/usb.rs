//! USB printers from sysfs, under a root directory (`/` in production).
//!
//! * `sys/class/usbmisc/lp*`: one entry per usblp device. `device` links to
//!   the USB interface, whose `ieee1284_id` is the printer's IEEE 1284
//!   device id (`MFG:Brother;CMD:PT-CBP;MDL:PT-P750W;CLS:PRINTER;SN:...`);
//!   the interface's parent is the USB device (`idVendor`, `idProduct`,
//!   `serial`, `product`).
//! * `sys/bus/usb/devices/*`: Brother devices (vendor 04f9) that expose a
//!   mass-storage interface (class 08) are in P-Lite / Editor Lite mode and
//!   cannot print raster; Brother printers with a printer interface
//!   (class 07) but no `lp*` have no usblp driver bound. Both are reported
//!   with the fix in words.
//!
//! The device file is `dev/usb/lpN` under the same root, or the stable
//! symlink `dev/labelhub/brother-<serial>` that packaging/udev creates,
//! when it exists.
//!
//! Nothing here panics on odd sysfs content: missing or unreadable files
//! are `None`, and every read is bounded.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::{model_in, Found};
use crate::brother::model::{self, Family, Model};

/// Brother's USB vendor id.
pub const BROTHER_VENDOR: u16 = 0x04f9;

/// The udev rule's stable symlink directory (under `/dev`).
pub const STABLE_DIR: &str = "dev/labelhub";

/// Largest sysfs attribute read (an IEEE 1284 id is at most 1 KiB).
const MAX_ATTR: u64 = 4096;

/// Reads a sysfs attribute, trimmed; `None` when missing or empty.
fn attr(path: &Path) -> Option<String> {
    let file = std::fs::File::open(path).ok()?;
    let mut buf = Vec::new();
    file.take(MAX_ATTR).read_to_end(&mut buf).ok()?;
    let s = String::from_utf8_lossy(&buf).trim().to_string();
    (!s.is_empty()).then_some(s)
}

/// The fields of an IEEE 1284 device id, keys upper-cased and long forms
/// folded to the short ones (`MANUFACTURER` -> `MFG`, `MODEL` -> `MDL`,
/// `SERIALNUMBER`/`SERN` -> `SN`).
pub fn parse_ieee1284(id: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for field in id.split(';') {
        let Some((k, v)) = field.split_once(':') else {
            continue;
        };
        let key = k.trim().to_ascii_uppercase();
        if key.is_empty() {
            continue;
        }
        let key = match key.as_str() {
            "MANUFACTURER" => "MFG".to_string(),
            "MODEL" => "MDL".to_string(),
            "SERIALNUMBER" | "SERN" | "SERIAL" => "SN".to_string(),
            "COMMAND SET" => "CMD".to_string(),
            "CLASS" => "CLS".to_string(),
            _ => key,
        };
        let v = v.trim();
        if !v.is_empty() {
            out.entry(key).or_insert_with(|| v.to_string());
        }
    }
    out
}

/// A USB device directory's ids.
struct UsbDevice {
    dir: PathBuf,
    vendor: Option<u16>,
    product: Option<u16>,
    serial: Option<String>,
    product_name: Option<String>,
}

fn hex16(s: Option<String>) -> Option<u16> {
    u16::from_str_radix(s?.trim(), 16).ok()
}

fn usb_device(dir: &Path) -> UsbDevice {
    UsbDevice {
        dir: dir.to_path_buf(),
        vendor: hex16(attr(&dir.join("idVendor"))),
        product: hex16(attr(&dir.join("idProduct"))),
        serial: attr(&dir.join("serial")),
        product_name: attr(&dir.join("product")),
    }
}

fn usb_id(d: &UsbDevice) -> Option<String> {
    Some(format!("{:04x}:{:04x}", d.vendor?, d.product?))
}

fn by_product_id(pid: u16) -> Option<&'static Model> {
    model::all().iter().find(|m| m.usb_product_id == Some(pid))
}

/// Sorted directory entries (names), empty when the directory is missing.
fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort_by_key(|a| natural(a));
    names
}

/// `lp2` before `lp10`.
fn natural(s: &str) -> (String, u64) {
    let digits = s.len() - s.trim_end_matches(|c: char| c.is_ascii_digit()).len();
    let (head, tail) = s.split_at(s.len() - digits);
    (head.to_string(), tail.parse().unwrap_or(0))
}

/// Every USB printer and every Brother device that could be one, under
/// `root` (`/` in production).
pub fn scan(root: &Path) -> Vec<Found> {
    let mut found = Vec::new();
    let mut printer_devices: Vec<PathBuf> = Vec::new();
    let class = root.join("sys/class/usbmisc");
    for name in entries(&class) {
        if !name.starts_with("lp") {
            continue;
        }
        let iface = class.join(&name).join("device");
        let ieee = attr(&iface.join("ieee1284_id"))
            .map(|s| parse_ieee1284(&s))
            .unwrap_or_default();
        let dev_dir = std::fs::canonicalize(&iface)
            .ok()
            .and_then(|p| p.parent().map(Path::to_path_buf));
        let dev = dev_dir.as_deref().map(usb_device);
        if let Some(d) = &dev {
            printer_devices.push(d.dir.clone());
        }
        found.push(lp_record(root, &name, &ieee, dev.as_ref()));
    }
    found.extend(other_brother_devices(root, &printer_devices));
    found
}

fn lp_record(
    root: &Path,
    name: &str,
    ieee: &BTreeMap<String, String>,
    dev: Option<&UsbDevice>,
) -> Found {
    let node = root.join("dev/usb").join(name);
    let serial = ieee
        .get("SN")
        .cloned()
        .or_else(|| dev.and_then(|d| d.serial.clone()));
    // The udev rule's symlink survives re-plugging into another port.
    let stable = serial
        .as_deref()
        .map(|s| root.join(STABLE_DIR).join(format!("brother-{s}")))
        .filter(|p| p.exists());
    let path = stable.unwrap_or(node);
    let mut f = Found::new("usb", path.display().to_string());
    f.serial = serial;
    f.usb_id = dev.and_then(usb_id);
    f.reported = ieee
        .get("MDL")
        .cloned()
        .or_else(|| dev.and_then(|d| d.product_name.clone()));
    let vendor = dev.and_then(|d| d.vendor);
    let maker = ieee.get("MFG").map(String::as_str).unwrap_or("");
    let brother = vendor == Some(BROTHER_VENDOR) || maker.to_ascii_lowercase().contains("brother");
    let m = ieee
        .get("MDL")
        .and_then(|mdl| model_in(mdl))
        .or_else(|| {
            dev.filter(|d| d.vendor == Some(BROTHER_VENDOR))
                .and_then(|d| d.product)
                .and_then(by_product_id)
        })
        .filter(|_| brother);
    f.uri = Some(format!("usb://{}", path.display()));
    match m {
        Some(m) => {
            f.model = Some(m.name.to_string());
            f.supported = true;
        }
        None if brother => {
            f.problem = Some(format!(
                "Brother {} is not a model labelhub supports",
                f.reported
                    .as_deref()
                    .unwrap_or("printer (no model name reported)")
            ));
            f.fix = Some("run `labelhub models` for the supported PT and QL models".into());
        }
        None => {
            f.problem = Some(format!(
                "{} is not a Brother label printer",
                [maker, f.reported.as_deref().unwrap_or("this printer")]
                    .join(" ")
                    .trim()
            ));
        }
    }
    f.complete();
    f
}

/// What to do to leave P-Lite / Editor Lite mode, per family.
fn mass_storage_fix(m: Option<&Model>) -> String {
    match m.map(|m| m.family) {
        Some(Family::Ql) => "the printer is in Editor Lite mode (it shows up as a USB drive): \
             press and hold the Editor Lite button until its green lamp goes off, \
             then unplug and replug the USB cable"
            .into(),
        Some(Family::Pt) => "the printer is in P-Lite mode (it shows up as a USB drive): \
             press and hold the P-Lite button (or slide the P-Lite switch to OFF) until \
             the P-Lite lamp goes off, then unplug and replug the USB cable"
            .into(),
        None => "the printer is in its mass-storage mode (P-Lite on PT, Editor Lite on QL): \
             turn that mode off with its button or switch until its lamp goes off, \
             then unplug and replug the USB cable"
            .into(),
    }
}

/// Brother devices under `sys/bus/usb/devices` that are not behind an
/// `lp*` device: mass-storage mode, or a printer without usblp.
fn other_brother_devices(root: &Path, printers: &[PathBuf]) -> Vec<Found> {
    let bus = root.join("sys/bus/usb/devices");
    let names = entries(&bus);
    let mut out = Vec::new();
    for name in names.iter().filter(|n| !n.contains(':')) {
        let dir = bus.join(name);
        let dev = usb_device(&dir);
        if dev.vendor != Some(BROTHER_VENDOR) {
            continue;
        }
        let canonical = std::fs::canonicalize(&dir).unwrap_or_else(|_| dir.clone());
        if printers.contains(&canonical) {
            continue;
        }
        let prefix = format!("{name}:");
        let classes: Vec<String> = names
            .iter()
            .filter(|n| n.starts_with(&prefix))
            .filter_map(|n| attr(&bus.join(n).join("bInterfaceClass")))
            .collect();
        let has = |c: &str| classes.iter().any(|x| x.eq_ignore_ascii_case(c));
        let m = dev
            .product_name
            .as_deref()
            .and_then(model_in)
            .or_else(|| dev.product.and_then(by_product_id));
        let mut f = if has("08") {
            let mut f = Found::new("usb_mass_storage", format!("usb {name}"));
            f.problem = Some(format!(
                "Brother {} is in mass-storage mode and cannot print from labelhub",
                m.map(|m| m.name)
                    .or(dev.product_name.as_deref())
                    .unwrap_or("device")
            ));
            f.fix = Some(mass_storage_fix(m));
            f
        } else if has("07") {
            let mut f = Found::new("usb_no_driver", format!("usb {name}"));
            f.problem = Some(format!(
                "Brother {} is plugged in but has no /dev/usb/lp* device",
                m.map(|m| m.name).unwrap_or("printer")
            ));
            f.fix = Some(
                "the usblp kernel driver is not bound: load it (`modprobe usblp`) and make \
                 sure ipp-usb or a CUPS USB backend is not holding the printer \
                 (`systemctl stop ipp-usb`), then replug it"
                    .into(),
            );
            f
        } else {
            continue;
        };
        f.model = m.map(|m| m.name.to_string());
        f.reported = dev.product_name.clone();
        f.serial = dev.serial.clone();
        f.usb_id = usb_id(&dev);
        out.push(f);
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake sysfs tree like the kernel's, with symlinks.
    pub struct FakeSys {
        pub root: PathBuf,
    }

    impl FakeSys {
        pub fn new(tag: &str) -> FakeSys {
            let root = std::env::temp_dir().join(format!(
                "labelhub-sysfs-{tag}-{}-{}",
                std::process::id(),
                time::OffsetDateTime::now_utc().unix_timestamp_nanos()
            ));
            std::fs::create_dir_all(root.join("sys/class/usbmisc")).unwrap();
            std::fs::create_dir_all(root.join("sys/bus/usb/devices")).unwrap();
            FakeSys { root }
        }

        fn write(&self, rel: &str, text: &str) {
            let p = self.root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, format!("{text}\n")).unwrap();
        }

        /// A USB device `port` with interfaces of the given classes.
        pub fn device(
            &self,
            port: &str,
            vid: &str,
            pid: &str,
            serial: &str,
            product: &str,
            classes: &[&str],
        ) {
            let dev = format!("sys/devices/pci0000:00/0000:00:14.0/usb1/{port}");
            self.write(&format!("{dev}/idVendor"), vid);
            self.write(&format!("{dev}/idProduct"), pid);
            if !serial.is_empty() {
                self.write(&format!("{dev}/serial"), serial);
            }
            self.write(&format!("{dev}/product"), product);
            symlink(
                format!("../../../devices/pci0000:00/0000:00:14.0/usb1/{port}"),
                self.root.join(format!("sys/bus/usb/devices/{port}")),
            )
            .unwrap();
            for (i, class) in classes.iter().enumerate() {
                let iface = format!("{port}:1.{i}");
                self.write(&format!("{dev}/{iface}/bInterfaceClass"), class);
                symlink(
                    format!("../../../devices/pci0000:00/0000:00:14.0/usb1/{port}/{iface}"),
                    self.root.join(format!("sys/bus/usb/devices/{iface}")),
                )
                .unwrap();
            }
        }

        /// `lpN` bound to interface 0 of `port`, with an IEEE 1284 id.
        pub fn lp(&self, n: u32, port: &str, ieee1284: &str) {
            let iface = format!("sys/devices/pci0000:00/0000:00:14.0/usb1/{port}/{port}:1.0");
            self.write(&format!("{iface}/ieee1284_id"), ieee1284);
            let lp = self.root.join(format!("sys/class/usbmisc/lp{n}"));
            std::fs::create_dir_all(&lp).unwrap();
            symlink(
                format!("../../../devices/pci0000:00/0000:00:14.0/usb1/{port}/{port}:1.0"),
                lp.join("device"),
            )
            .unwrap();
        }
    }

    impl Drop for FakeSys {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }

    #[test]
    fn ieee1284_ids_parse_short_and_long_keys() {
        let id = parse_ieee1284(
            "MANUFACTURER:Brother;COMMAND SET:PT-CBP;MODEL:PT-P750W;CLS:PRINTER;SERIALNUMBER:E6Z123;",
        );
        assert_eq!(id["MFG"], "Brother");
        assert_eq!(id["MDL"], "PT-P750W");
        assert_eq!(id["SN"], "E6Z123");
        assert_eq!(id["CMD"], "PT-CBP");
        assert!(parse_ieee1284(";;garbage;:x;K:").is_empty());
    }

    #[test]
    fn a_fake_sysfs_yields_printers_mass_storage_and_driverless_devices() {
        let sys = FakeSys::new("scan");
        // A QL-820NWB on lp0 (by its 1284 id), a PT-P750W on lp1 known only
        // by its USB product id, an HP on lp2, a PT-P700 in P-Lite mode, a
        // QL-700 with no usblp, and a Brother scanner (ignored).
        sys.device("1-1", "04f9", "209d", "000K9Z123456", "QL-820NWB", &["07"]);
        sys.lp(
            0,
            "1-1",
            "MFG:Brother;CMD:PT-CBP;MDL:QL-820NWB;CLS:PRINTER;SN:000K9Z123456;",
        );
        let p750 = model::by_name("PT-P750W").unwrap().usb_product_id.unwrap();
        sys.device(
            "1-2",
            "04f9",
            &format!("{p750:04x}"),
            "E6Z000111",
            "PT-P750W",
            &["07"],
        );
        sys.lp(1, "1-2", "");
        sys.device("1-3", "03f0", "1234", "HPX", "LaserJet", &["07"]);
        sys.lp(2, "1-3", "MFG:HP;MDL:LaserJet 1020;CLS:PRINTER;");
        sys.device("1-4", "04f9", "2065", "", "PT-P700", &["08"]);
        sys.device("1-5", "04f9", "2042", "Q7", "QL-700", &["07"]);
        sys.device("1-6", "04f9", "0300", "", "DCP scanner", &["ff"]);
        std::fs::create_dir_all(sys.root.join(STABLE_DIR)).unwrap();
        std::fs::write(sys.root.join(STABLE_DIR).join("brother-000K9Z123456"), "").unwrap();

        let found = scan(&sys.root);
        assert_eq!(found.len(), 5, "{found:#?}");
        let ql = &found[0];
        assert_eq!(ql.kind, "usb");
        assert_eq!(ql.model.as_deref(), Some("QL-820NWB"));
        assert_eq!(ql.serial.as_deref(), Some("000K9Z123456"));
        assert_eq!(ql.usb_id.as_deref(), Some("04f9:209d"));
        let stable = sys.root.join("dev/labelhub/brother-000K9Z123456");
        assert_eq!(
            ql.uri.as_deref(),
            Some(format!("usb://{}", stable.display()).as_str())
        );
        let add = ql.add.as_ref().unwrap();
        assert_eq!(add["model"], "QL-820NWB");
        assert_eq!(add["slug"], "ql-820nwb-9z123456");
        assert_eq!(add["connection"]["uri"], ql.uri.clone().unwrap());

        let pt = &found[1];
        assert_eq!(pt.model.as_deref(), Some("PT-P750W"));
        assert_eq!(
            pt.uri.as_deref(),
            Some(format!("usb://{}", sys.root.join("dev/usb/lp1").display()).as_str())
        );
        assert!(pt.supported && pt.add.is_some());

        let hp = &found[2];
        assert!(!hp.supported && hp.add.is_none());
        assert!(hp
            .problem
            .as_deref()
            .unwrap()
            .contains("not a Brother label printer"));

        let lite = &found[3];
        assert_eq!(lite.kind, "usb_mass_storage");
        assert_eq!(lite.model.as_deref(), Some("PT-P700"));
        assert!(lite.fix.as_deref().unwrap().contains("P-Lite"), "{lite:?}");
        assert!(lite.add.is_none());

        let bare = &found[4];
        assert_eq!(bare.kind, "usb_no_driver");
        assert_eq!(bare.model.as_deref(), Some("QL-700"));
        assert!(bare.fix.as_deref().unwrap().contains("usblp"));
    }

    #[test]
    fn a_missing_or_empty_sysfs_finds_nothing() {
        assert!(scan(Path::new("/nonexistent-labelhub-root")).is_empty());
        let sys = FakeSys::new("empty");
        assert!(scan(&sys.root).is_empty());
    }

    #[test]
    fn lp_devices_sort_naturally() {
        let mut v = vec!["lp10".to_string(), "lp2".into(), "lp1".into()];
        v.sort_by_key(|a| natural(a));
        assert_eq!(v, ["lp1", "lp2", "lp10"]);
    }
}
