//! Label rendering (issue 3): content types, text, QR codes, barcodes, images.
