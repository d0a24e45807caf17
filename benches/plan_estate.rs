//! `seedwatch plan --estate` at estate scale, through the built binary: peak memory and CPU.
//!
//! `cargo bench --bench plan_estate` writes `az graph query`-shaped exports (`count` and
//! `skip_token` before the `data` array) of 100,000 and 1,000,000 resources into a temporary
//! directory and runs `seedwatch plan --json --estate FILE` on each under
//! `/usr/bin/time -f '%M %U %S %e'` (peak resident set, user and system CPU, wall time).
//!
//! Resources are about 1.3 kB each, with the envelope fields Resource Graph prints: public IPs,
//! web apps, storage accounts (half with a `blobServices/default` companion, placed before or
//! after the account), DNS zones (a quarter private) with A and CNAME record sets before and
//! after their zone, and VMs, NICs and disks without seeds.
//!
//! Settings: `PLAN_BENCH_RESOURCES` (comma-separated counts, default `100000,1000000`),
//! `PLAN_BENCH_BIN` (another `seedwatch` binary to measure, for example an older build).

use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

const DEFAULT_COUNTS: &str = "100000,1000000";

fn main() {
    let counts: Vec<usize> = std::env::var("PLAN_BENCH_RESOURCES")
        .unwrap_or_else(|_| DEFAULT_COUNTS.to_string())
        .split(',')
        .filter_map(|c| c.trim().replace('_', "").parse().ok())
        .collect();
    let binary = std::env::var("PLAN_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_seedwatch").to_string());
    println!("binary: {binary}");
    let dir = tempfile::tempdir().expect("temporary directory");
    for count in counts {
        let file = dir.path().join(format!("estate-{count}.json"));
        let started = Instant::now();
        let bytes = generate(&file, count).expect("write the estate file");
        println!(
            "\n{count} resources: {:.1} MB file ({:.0} bytes per resource), generated in {:.1} s",
            bytes as f64 / 1e6,
            bytes as f64 / count as f64,
            started.elapsed().as_secs_f64()
        );
        measure(&binary, &file, dir.path());
        std::fs::remove_file(&file).expect("remove the estate file");
    }
}

fn measure(binary: &str, file: &Path, dir: &Path) {
    let out_path = dir.join("plan.json");
    let out = std::fs::File::create(&out_path).expect("plan output file");
    let load_before = load_average();
    let output = Command::new("/usr/bin/time")
        .args(["-f", "%M %U %S %e"])
        .arg(binary)
        .args(["plan", "--json", "--estate"])
        .arg(file)
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .expect("run /usr/bin/time seedwatch");
    let stderr = String::from_utf8_lossy(&output.stderr);
    let Some(figures) = stderr.lines().last() else {
        println!("no figures from /usr/bin/time: {stderr}");
        return;
    };
    let numbers: Vec<f64> = figures.split_whitespace().filter_map(|n| n.parse().ok()).collect();
    if !output.status.success() || numbers.len() != 4 {
        println!("seedwatch failed ({}): {stderr}", output.status);
        return;
    }
    let plan_size = std::fs::metadata(&out_path).map(|m| m.len()).unwrap_or(0);
    println!("summary:          {}", summary(&out_path));
    println!("plan JSON:        {:.1} MB", plan_size as f64 / 1e6);
    println!("peak memory:      {:.1} MB (max resident set)", numbers[0] / 1024.0);
    println!(
        "CPU time:         {:.2} s ({:.2} s user + {:.2} s system)",
        numbers[1] + numbers[2],
        numbers[1],
        numbers[2]
    );
    println!("wall time:        {:.2} s", numbers[3]);
    println!("load average:     {load_before} before, {} after", load_average());
}

/// The `summary` object at the end of the plan JSON.
fn summary(path: &Path) -> String {
    let Ok(mut file) = std::fs::File::open(path) else {
        return "unavailable".into();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(400)));
    let mut tail = String::new();
    let _ = file.read_to_string(&mut tail);
    match tail.rfind("\"summary\"") {
        Some(at) => tail[at..].trim_end().trim_end_matches('}').to_string() + "}",
        None => "unavailable".into(),
    }
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unavailable".into())
}

/// Writes `count` resources; returns the file size.
fn generate(path: &Path, count: usize) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    write!(
        out,
        "{{\"count\": {count}, \"skip_token\": null, \"totalRecords\": {count}, \"data\": ["
    )?;
    let mut written = 0;
    let mut i = 0;
    while written < count {
        for item in group(i) {
            if written == count {
                break;
            }
            if written > 0 {
                out.write_all(b",\n")?;
            }
            out.write_all(item.as_bytes())?;
            written += 1;
        }
        i += 1;
    }
    out.write_all(b"]}\n")?;
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Twenty resources: 5 public IPs, 4 web apps, 2 storage accounts and 1 companion, 1 DNS zone
/// with 3 record sets, 4 without seeds (VM, NIC, 2 disks).
fn group(i: usize) -> Vec<String> {
    let sub = format!("{:08x}-1111-4222-8333-{:012x}", i / 500, i / 500);
    let rg = format!("rg-app-{:03}", i % 40);
    let id = |rest: String| format!("/subscriptions/{sub}/resourceGroups/{rg}/providers/{rest}");
    let mut items = Vec::with_capacity(20);
    let zone_id = id(format!("Microsoft.Network/dnszones/zone{i}.contoso-{}.com", i % 97));
    let zone_name = format!("zone{i}.contoso-{}.com", i % 97);
    let records: Vec<String> = ["www", "api", "@"]
        .iter()
        .enumerate()
        .map(|(n, name)| {
            let (kind, props) = if n == 2 {
                ("CNAME", format!("\"CNAMERecord\": {{\"cname\": \"edge{i}.azurefd.net\"}}"))
            } else {
                ("A", format!("\"ARecords\": [{{\"ipv4Address\": \"20.{}.{}.{n}\"}}]", i / 256 % 256, i % 256))
            };
            let fqdn = if *name == "@" { format!("{zone_name}.") } else { format!("{name}.{zone_name}.") };
            envelope(
                &format!("{zone_id}/{kind}/{name}"),
                name,
                &format!("Microsoft.Network/dnszones/{kind}"),
                &format!("\"TTL\": 3600, \"fqdn\": \"{fqdn}\", \"provisioningState\": \"Succeeded\", {props}, \"targetResource\": {{}}, \"metadata\": {{\"owner\": \"team-{}\"}}", i % 13),
            )
        })
        .collect();
    let zone = envelope(
        &zone_id,
        &zone_name,
        "Microsoft.Network/dnszones",
        &format!(
            "\"zoneType\": \"{}\", \"maxNumberOfRecordSets\": 10000, \"numberOfRecordSets\": 5, \"nameServers\": [\"ns1-0{}.azure-dns.com.\", \"ns2-0{}.azure-dns.net.\", \"ns3-0{}.azure-dns.org.\", \"ns4-0{}.azure-dns.info.\"]",
            if i.is_multiple_of(4) { "Private" } else { "Public" },
            i % 9,
            i % 9,
            i % 9,
            i % 9
        ),
    );
    // Record sets before their zone in odd groups, after it in even ones.
    if i % 2 == 1 {
        items.extend(records.iter().cloned());
        items.push(zone);
    } else {
        items.push(zone);
        items.extend(records.iter().cloned());
    }
    for n in 0..5 {
        items.push(public_ip(
            &id(format!("Microsoft.Network/publicIPAddresses/pip-{i}-{n}")),
            i,
            n,
        ));
    }
    for n in 0..4 {
        items.push(web_app(&id(format!("Microsoft.Web/sites/app-{i}-{n}")), i, n));
    }
    for n in 0..2 {
        let account = id(format!("Microsoft.Storage/storageAccounts/st{i}x{n}"));
        let website = n == 0;
        let companion = envelope(
            &format!("{account}/blobServices/default"),
            "default",
            "Microsoft.Storage/storageAccounts/blobServices",
            &format!(
                "\"staticWebsite\": {{\"enabled\": {website}, \"indexDocument\": \"index.html\", \"errorDocument404Path\": \"404.html\"}}, \"deleteRetentionPolicy\": {{\"enabled\": true, \"days\": 7}}, \"isVersioningEnabled\": false, \"cors\": {{\"corsRules\": []}}"
            ),
        );
        let storage = storage_account(&account, i, n);
        // The companion before its account in odd groups, after it in even ones.
        if n == 0 && i % 2 == 1 {
            items.push(companion);
            items.push(storage);
        } else if n == 0 {
            items.push(storage);
            items.push(companion);
        } else {
            items.push(storage);
        }
    }
    items.push(envelope(
        &id(format!("Microsoft.Compute/virtualMachines/vm-{i}")),
        &format!("vm-{i}"),
        "Microsoft.Compute/virtualMachines",
        &format!("\"vmId\": \"{:08x}-aaaa-4bbb-8ccc-{:012x}\", \"hardwareProfile\": {{\"vmSize\": \"Standard_D2s_v5\"}}, \"storageProfile\": {{\"osDisk\": {{\"osType\": \"Linux\", \"name\": \"osdisk-{i}\", \"createOption\": \"FromImage\", \"caching\": \"ReadWrite\", \"diskSizeGB\": 30}}, \"imageReference\": {{\"publisher\": \"Canonical\", \"offer\": \"ubuntu-24_04-lts\", \"sku\": \"server\", \"version\": \"latest\"}}}}, \"osProfile\": {{\"computerName\": \"vm-{i}\", \"adminUsername\": \"azureuser\", \"linuxConfiguration\": {{\"disablePasswordAuthentication\": true}}}}, \"provisioningState\": \"Succeeded\"", i, i),
    ));
    items.push(envelope(
        &id(format!("Microsoft.Network/networkInterfaces/nic-{i}")),
        &format!("nic-{i}"),
        "Microsoft.Network/networkInterfaces",
        &format!("\"ipConfigurations\": [{{\"name\": \"ipconfig1\", \"properties\": {{\"privateIPAddress\": \"10.{}.{}.4\", \"privateIPAllocationMethod\": \"Dynamic\", \"primary\": true, \"subnet\": {{\"id\": \"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/vnet/subnets/default\"}}}}}}], \"enableAcceleratedNetworking\": true, \"provisioningState\": \"Succeeded\"", i / 256 % 256, i % 256),
    ));
    for n in 0..2 {
        items.push(envelope(
            &id(format!("Microsoft.Compute/disks/disk-{i}-{n}")),
            &format!("disk-{i}-{n}"),
            "Microsoft.Compute/disks",
            &format!("\"diskSizeGB\": {}, \"diskState\": \"Attached\", \"creationData\": {{\"createOption\": \"Empty\"}}, \"encryption\": {{\"type\": \"EncryptionAtRestWithPlatformKey\"}}, \"networkAccessPolicy\": \"AllowAll\", \"publicNetworkAccess\": \"Enabled\", \"diskIOPSReadWrite\": 500, \"diskMBpsReadWrite\": 60, \"tier\": \"P10\", \"provisioningState\": \"Succeeded\", \"uniqueId\": \"{:08x}-dddd-4eee-8fff-{:012x}\"", 64 << n, i, n),
        ));
    }
    items
}

fn public_ip(id: &str, i: usize, n: usize) -> String {
    envelope(
        id,
        &format!("pip-{i}-{n}"),
        "Microsoft.Network/publicIPAddresses",
        &format!(
            "\"provisioningState\": \"Succeeded\", \"ipAddress\": \"{}.{}.{}.{}\", \"publicIPAddressVersion\": \"IPv4\", \"publicIPAllocationMethod\": \"Static\", \"idleTimeoutInMinutes\": 4, \"dnsSettings\": {{\"domainNameLabel\": \"pip-{i}-{n}\", \"fqdn\": \"pip-{i}-{n}.westeurope.cloudapp.azure.com\"}}, \"ipTags\": [], \"ipConfiguration\": {{\"id\": \"{id}/ipConfigurations/ipconfig1\"}}",
            20 + n,
            i / 65536 % 256,
            i / 256 % 256,
            i % 256
        ),
    )
}

fn web_app(id: &str, i: usize, n: usize) -> String {
    let name = format!("app-{i}-{n}");
    envelope(
        id,
        &name,
        "Microsoft.Web/sites",
        &format!(
            "\"state\": \"Running\", \"hostNames\": [\"{name}.azurewebsites.net\", \"{name}.contoso-{}.com\"], \"enabledHostNames\": [\"{name}.azurewebsites.net\", \"{name}.scm.azurewebsites.net\"], \"defaultHostName\": \"{name}.azurewebsites.net\", \"httpsOnly\": true, \"publicNetworkAccess\": \"Enabled\", \"siteConfig\": {{\"numberOfWorkers\": 1, \"linuxFxVersion\": \"DOTNETCORE|8.0\", \"minTlsVersion\": \"1.2\"}}, \"serverFarmId\": \"{}/serverfarms/plan-{}\"",
            i % 97,
            id.rsplit_once("/sites/").map_or("", |(prefix, _)| prefix),
            i % 11
        ),
    )
}

fn storage_account(id: &str, i: usize, n: usize) -> String {
    let name = format!("st{i}x{n}");
    envelope(
        id,
        &name,
        "Microsoft.Storage/storageAccounts",
        &format!(
            "\"provisioningState\": \"Succeeded\", \"primaryEndpoints\": {{\"blob\": \"https://{name}.blob.core.windows.net/\", \"web\": \"https://{name}.z6.web.core.windows.net/\", \"dfs\": \"https://{name}.dfs.core.windows.net/\", \"file\": \"https://{name}.file.core.windows.net/\"}}, \"customDomain\": {{\"name\": \"static-{i}-{n}.contoso-{}.com\"}}, \"supportsHttpsTrafficOnly\": true, \"minimumTlsVersion\": \"TLS1_2\", \"allowBlobPublicAccess\": false, \"accessTier\": \"Hot\"",
            i % 97
        ),
    )
}

/// The Resource Graph envelope around `properties`.
fn envelope(id: &str, name: &str, arm_type: &str, properties: &str) -> String {
    let sub = id.split('/').nth(2).unwrap_or("");
    let rg = id.split('/').nth(4).unwrap_or("");
    format!(
        "{{\"id\": \"{id}\", \"name\": \"{name}\", \"type\": \"{}\", \"tenantId\": \"72f988bf-0000-4000-8000-2d7cd011db47\", \"kind\": \"\", \"location\": \"westeurope\", \"resourceGroup\": \"{rg}\", \"subscriptionId\": \"{sub}\", \"managedBy\": \"\", \"sku\": {{\"name\": \"Standard\", \"tier\": \"Regional\"}}, \"plan\": null, \"properties\": {{{properties}}}, \"tags\": {{\"env\": \"prod\", \"costCenter\": \"cc-{}\", \"owner\": \"platform-team\"}}, \"systemData\": {{\"createdBy\": \"deploy@contoso.com\", \"createdByType\": \"User\", \"createdAt\": \"2025-03-14T09:26:53.5897932Z\", \"lastModifiedBy\": \"5c8f1e2a-0000-4000-8000-9d3b7a6c5e41\", \"lastModifiedByType\": \"Application\", \"lastModifiedAt\": \"2026-11-02T17:45:12.1234567Z\"}}, \"identity\": null, \"zones\": null, \"extendedLocation\": null}}",
        arm_type.to_ascii_lowercase(),
        name.len() % 50
    )
}
