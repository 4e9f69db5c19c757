"""Status: each captive's legal status, decided by a versioned rulebook with its rule trace."""
