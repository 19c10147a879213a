# gendata.awk: the benchmark's stand-in lists and query files.
#
#   awk -v n=10000 -v dir=DIR -v apex=rblmux.internal -v suffix=bench.invalid \
#       -v ttl=3600 -v threshold=2 -f gendata.awk
#
# Test address i (0 <= i < n) is 10.<i/65536>.<i/256>.<i%256>: these are only
# data inside the zones and the query names, no packet is ever sent to them.
# List a holds the addresses with i % 2 == 0, b i % 3 == 0, c i % 5 == 0 and
# d i % 7 == 0, so an address sits on 0 to 4 lists (about 23% on none) and the
# combined verdict at threshold 2 is a real mix of listed and not listed.
#
# Writes DIR/{a,b,c,d}.zone (rbldnsd ip4set), DIR/q-combined.txt
# (<rev-ip>.<apex> A) and DIR/q-single.txt (<rev-ip>.a.<suffix> A), and prints
# "expected <file> <names> <names answering NOERROR>" for each query file
# (each list weighing 1), so the harness can check the servers' answers.
BEGIN {
	if (n < 1 || dir == "" || apex == "" || suffix == "" || ttl < 1 ||
	    threshold < 1) {
		print "gendata.awk: need -v n= dir= apex= suffix= ttl= threshold=" > "/dev/stderr"
		exit 2
	}
	split("a b c d", lists, " ")
	split("2 3 5 7", modulus, " ")
	for (l = 1; l <= 4; l++) {
		f = dir "/" lists[l] ".zone"
		# Negative answers carry this SOA, whose minimum is the negative
		# TTL: without it a cache could not keep NXDOMAINs (RFC 2308).
		printf "$SOA %d ns.%s. hostmaster.%s. 1 3600 600 86400 %d\n", \
			ttl, suffix, suffix, ttl > f
		printf ":127.0.0.2:Listed by %s.%s\n", lists[l], suffix > f
		# RFC 5782 test point: listed, as a health probe expects.
		print "127.0.0.2" > f
	}
	combined_listed = 0
	single_listed = 0
	for (i = 0; i < n; i++) {
		o2 = int(i / 65536) % 256
		o3 = int(i / 256) % 256
		o4 = i % 256
		hits = 0
		for (l = 1; l <= 4; l++) {
			if (i % modulus[l] == 0) {
				printf "10.%d.%d.%d\n", o2, o3, o4 > (dir "/" lists[l] ".zone")
				hits++
			}
		}
		if (hits >= threshold)
			combined_listed++
		if (i % 2 == 0)
			single_listed++
		rev = sprintf("%d.%d.%d.10", o4, o3, o2)
		printf "%s.%s A\n", rev, apex > (dir "/q-combined.txt")
		printf "%s.a.%s A\n", rev, suffix > (dir "/q-single.txt")
	}
	for (l = 1; l <= 4; l++)
		close(dir "/" lists[l] ".zone")
	close(dir "/q-combined.txt")
	close(dir "/q-single.txt")
	printf "expected q-combined.txt %d %d\n", n, combined_listed
	printf "expected q-single.txt %d %d\n", n, single_listed
}
