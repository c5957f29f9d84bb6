package marshaler

// Internal helpers exposed to the black-box tests and fuzz targets.
var (
	PercentEncode = percentEncode
	PercentDecode = percentDecode
)
