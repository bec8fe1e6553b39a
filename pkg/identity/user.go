package identity

// Generate returns a new user identity: a random seed in the "1.1.0" form
// (24-word mnemonic, ThreebotID 0 until the user registers). The CLI writes it
// with CreateSeedFile (mode 0600) and shows Seed.Mnemonic() once so the user
// can restore it with SeedFromMnemonic.
func Generate() (SeedFile, error) {
	seed, err := GenerateSeed()
	if err != nil {
		return SeedFile{}, err
	}
	return SeedFile{Version: VersionMnemonic, Seed: seed}, nil
}

// KeyPair returns the key pair of the file's seed.
func (f SeedFile) KeyPair() KeyPair { return NewKeyPair(f.Seed) }
