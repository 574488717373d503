"""The test suite, a package so that its folders (tests/emulator, ...) never shadow the top-level
packages of the same name (emulator) on sys.path."""
