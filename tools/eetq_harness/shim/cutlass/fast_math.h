// Empty host-only stand-in: tile_interleaved_layout.h includes it but the preprocessors use nothing from it.
#pragma once
