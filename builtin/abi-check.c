/* Prints the layout of bash's builtin ABI as the real headers (bash-builtins) give it;
   abi-check.sh compares it with the Rust declarations in src/sys.rs. */
#include <stddef.h>
#include <stdio.h>
#include "loadables.h"
#include "quit.h"

int main(void)
{
  printf("abi builtin %zu %zu %zu %zu %zu %zu %zu\n", sizeof(struct builtin),
         offsetof(struct builtin, name), offsetof(struct builtin, function),
         offsetof(struct builtin, flags), offsetof(struct builtin, long_doc),
         offsetof(struct builtin, short_doc), offsetof(struct builtin, handle));
  printf("abi int-fields %zu %zu\n", sizeof(((struct builtin *)0)->flags),
         sizeof(((WORD_DESC *)0)->flags));
  printf("abi word_desc %zu %zu %zu\n", sizeof(WORD_DESC), offsetof(WORD_DESC, word),
         offsetof(WORD_DESC, flags));
  printf("abi word_list %zu %zu %zu\n", sizeof(WORD_LIST), offsetof(WORD_LIST, next),
         offsetof(WORD_LIST, word));
  printf("abi sig_atomic_t %zu\n", sizeof(interrupt_state));
  printf("abi BUILTIN_ENABLED %d\n", BUILTIN_ENABLED);
  return 0;
}
