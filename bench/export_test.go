package bench

// ParseStatm exposes parseStatm to the black-box tests.
var ParseStatm = parseStatm
