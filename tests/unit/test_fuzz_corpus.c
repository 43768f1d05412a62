/*
 * test_fuzz_corpus.c - replays fuzz/corpus/<target>/ through that fuzz target's checks
 * (fuzz/<target>.c) without libFuzzer, so every normal, ASan and valgrind run of the test
 * suite covers the inputs the fuzzers found, and a target whose invariants no longer match
 * the code fails here first. Any trap or sanitizer report fails it.
 *
 * Built once per target (tests/CMakeLists.txt), with FUZZ_TARGET naming it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int main(void)
{
	const char *root = getenv("MODBRIDGE_TESTDATA");
	char dir[4096];
	struct dirent *e;
	size_t files = 0;
	DIR *d;

	/* tests/data -> fuzz/corpus/<target> */
	snprintf(dir, sizeof(dir), "%s/../../fuzz/corpus/%s", root ? root : "tests/data",
		 FUZZ_TARGET);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "cannot open %s: %s\n", dir, strerror(errno));
		return 1;
	}
	while ((e = readdir(d))) {
		char path[8192];
		FILE *f;
		uint8_t *buf;
		long size;

		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		f = fopen(path, "rb");
		if (!f) {
			fprintf(stderr, "cannot open %s: %s\n", path, strerror(errno));
			closedir(d);
			return 1;
		}
		fseek(f, 0, SEEK_END);
		size = ftell(f);
		fseek(f, 0, SEEK_SET);
		buf = malloc(size > 0 ? (size_t)size : 1);
		if (!buf || (size > 0 && fread(buf, 1, (size_t)size, f) != (size_t)size)) {
			fprintf(stderr, "cannot read %s\n", path);
			free(buf);
			fclose(f);
			closedir(d);
			return 1;
		}
		fclose(f);
		/* An exact-size copy, so an overrun by one byte is caught. */
		LLVMFuzzerTestOneInput(buf, (size_t)size);
		free(buf);
		files++;
	}
	closedir(d);
	printf("%s: %zu corpus inputs replayed\n", FUZZ_TARGET, files);
	return files >= 30 ? 0 : 1; /* a corpus that has gone missing is a failure too */
}
