"""Type profiles (the struct offsets backchain needs) and the type graph of the struct command."""
