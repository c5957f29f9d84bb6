package bench

// Placeholders until package jetstream lands.
var jeteventsSync, jeteventsAsync, jeteventsBatch, jeteventsConsume Variant
