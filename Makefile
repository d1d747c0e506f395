# cht-sync build.  `make` builds build/cht-sync; `make asan` the same with
# AddressSanitizer and UndefinedBehaviorSanitizer into build/asan/; `make unit`
# builds and runs the unit tests in both; `make test` runs the whole suite
# (scripts/test); `make fuzz` the libFuzzer harnesses (clang, see
# scripts/fuzz).  Libraries come from pkg-config.

PKGS     := libcurl libpq jansson yaml-0.1 libmicrohttpd
CC       ?= cc
CFLAGS   ?= -O2 -g
WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wno-unused-parameter
STD      := -std=c11 -D_GNU_SOURCE
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS)) -lpthread -lm
ASAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# one folder per subsystem (README, "Layout"); objects mirror the tree
SUBSYS   := common feed store sync template pipeline http observe daemon
SRCS     := src/main.c $(sort $(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.c)))
HDRS     := $(sort $(foreach d,$(SUBSYS),$(wildcard src/$(d)/*.h)))
LIB_SRCS := $(filter-out src/main.c,$(SRCS))
# the base models built into the binary (src/daemon/embedded.h)
BASE_MODELS := base-models
BASE_FILES  := $(shell find $(BASE_MODELS) -type f 2>/dev/null | LC_ALL=C sort)
# the list of those files, rewritten only when it changes, so that a file
# removed from base-models/ also regenerates the embedded copy
BASE_LIST   := build/gen/base_models.list
$(shell mkdir -p build/gen; echo '$(BASE_FILES)' | cmp -s - $(BASE_LIST) || echo '$(BASE_FILES)' > $(BASE_LIST))
# the pipeline's built-in dbt macros (src/pipeline/dbt_builtin.h), the same way
DBT_MACROS := src/pipeline/macros
DBT_MACRO_FILES := $(sort $(wildcard $(DBT_MACROS)/*.sql))
DBT_MACRO_LIST  := build/gen/dbt_macros.list
$(shell echo '$(DBT_MACRO_FILES)' | cmp -s - $(DBT_MACRO_LIST) || echo '$(DBT_MACRO_FILES)' > $(DBT_MACRO_LIST))
UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))

OBJS      := $(SRCS:src/%.c=build/obj/%.o) build/obj/gen/base_models.o build/obj/gen/dbt_macros.o
ASAN_OBJS := $(SRCS:src/%.c=build/asan/obj/%.o) build/asan/obj/gen/base_models.o build/asan/obj/gen/dbt_macros.o
LIB_OBJS      := $(LIB_SRCS:src/%.c=build/obj/%.o) build/obj/gen/base_models.o build/obj/gen/dbt_macros.o
ASAN_LIB_OBJS := $(LIB_SRCS:src/%.c=build/asan/obj/%.o) build/asan/obj/gen/base_models.o build/asan/obj/gen/dbt_macros.o
UNIT_BINS      := $(UNIT_SRCS:tests/unit/%.c=build/tests/%)
ASAN_UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=build/asan/tests/%)

# libFuzzer harnesses tests/fuzz/fuzz_<name>.c -> build/fuzz/fuzz_<name>
# (clang only); scripts/fuzz runs them over tests/fuzz/corpus/<name>/
FUZZ_CC    ?= clang
FUZZ_FLAGS := -fsanitize=fuzzer-no-link,address,undefined -fno-omit-frame-pointer \
              -fno-sanitize-recover=undefined -O1 -g
FUZZ_SRCS  := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
# the embedded base models are data only: the plain object serves the fuzz build too
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=build/fuzz/obj/%.o) build/obj/gen/base_models.o build/obj/gen/dbt_macros.o
# warnings stay errors in the cc builds; clang's extra ones must not stop fuzzing
FUZZ_WARN  := $(filter-out -Werror,$(WARN))

.PHONY: all asan unit fuzz test format check-format clean

all: build/cht-sync

asan: build/asan/cht-sync

build/cht-sync: $(OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(PKG_LIBS)

build/asan/cht-sync: $(ASAN_OBJS)
	$(CC) $(CFLAGS) $(ASAN) -o $@ $^ $(PKG_LIBS)

build/gen/base_models.c: scripts/embed-files $(BASE_FILES) $(BASE_LIST) | build/gen
	scripts/embed-files $(BASE_MODELS) > $@.tmp && mv $@.tmp $@

build/gen/dbt_macros.c: scripts/embed-files $(DBT_MACRO_FILES) $(DBT_MACRO_LIST) | build/gen
	scripts/embed-files $(DBT_MACROS) pipeline/dbt_builtin.h dbt_builtin_file dbt_builtin > $@.tmp && mv $@.tmp $@

build/gen:
	mkdir -p $@

build/obj/gen/dbt_macros.o: build/gen/dbt_macros.c src/pipeline/dbt_builtin.h
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) -Isrc -c -o $@ $<

build/asan/obj/gen/dbt_macros.o: build/gen/dbt_macros.c src/pipeline/dbt_builtin.h
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(ASAN) -Isrc -c -o $@ $<

build/obj/gen/base_models.o: build/gen/base_models.c src/daemon/embedded.h
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) -Isrc -c -o $@ $<

build/asan/obj/gen/base_models.o: build/gen/base_models.c src/daemon/embedded.h
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(ASAN) -Isrc -c -o $@ $<

build/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) -Isrc $(PKG_CFLAGS) -c -o $@ $<

build/asan/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(STD) $(WARN) $(CFLAGS) $(ASAN) -Isrc $(PKG_CFLAGS) -c -o $@ $<

build/tests/%: tests/unit/%.c tests/unit/unit.h $(LIB_OBJS) | build/tests
	$(CC) $(STD) $(WARN) $(CFLAGS) $(PKG_CFLAGS) -Isrc -o $@ $< $(LIB_OBJS) $(PKG_LIBS)

build/asan/tests/%: tests/unit/%.c tests/unit/unit.h $(ASAN_LIB_OBJS) | build/asan/tests
	$(CC) $(STD) $(WARN) $(CFLAGS) $(ASAN) $(PKG_CFLAGS) -Isrc -o $@ $< $(ASAN_LIB_OBJS) $(PKG_LIBS)

build/tests build/asan/tests:
	mkdir -p $@

fuzz: $(FUZZ_BINS)

build/fuzz/obj/%.o: src/%.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(STD) $(FUZZ_WARN) $(FUZZ_FLAGS) -Isrc $(PKG_CFLAGS) -c -o $@ $<

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(STD) $(FUZZ_WARN) $(FUZZ_FLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) -Isrc -o $@ $< \
	    $(FUZZ_LIB_OBJS) $(PKG_LIBS)

# runs every unit test binary, plain and sanitized; prints one line per test
unit: $(UNIT_BINS) $(ASAN_UNIT_BINS)
	@scripts/run-unit $(UNIT_BINS) $(ASAN_UNIT_BINS)

test:
	scripts/test

format:
	clang-format -i src/*.c src/*/*.[ch] tests/unit/*.c tests/unit/*.h tests/fuzz/*.c bench/*.c 2>/dev/null || true

check-format:
	@bad=$$(for f in src/*.[ch] src/*/*.[ch] tests/unit/*.[ch] $(wildcard tests/fuzz/*.c bench/*.c); do \
	  clang-format --dry-run -Werror $$f >/dev/null 2>&1 || echo $$f; done); \
	if [ -n "$$bad" ]; then echo "not clang-formatted:"; echo "$$bad"; exit 1; fi

clean:
	rm -rf build
