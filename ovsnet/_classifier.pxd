# cython: language_level=3
"""C-level declarations of ovsnet._classifier, for other Cython modules to cimport.

    from ovsnet._classifier cimport _trie_lookup

``_trie_lookup(trie, value)`` is ``PrefixTrie.lookup`` (``trie_lookup_value``):
``(maskbits, plens)`` for ``value``, reading the trie's Python dictionaries.
"""

cdef tuple _trie_lookup(object trie, object value)

from libc.stdint cimport uint8_t

# ``derive_ufid``'s hash (128-bit murmur3) of ``n`` bytes at ``p`` into ``out[16]``
cdef void _ufid_hash(const uint8_t *p, size_t n, uint8_t *out) noexcept nogil
