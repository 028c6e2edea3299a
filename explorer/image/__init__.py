"""What every layer above stands on: the dump's image (:mod:`explorer.image.dumpimage`, what
the dump says about itself) and the one bounded list walker (:mod:`explorer.image.lists`).
Both stand on parsers alone; the symbol and type sources and the model take them."""
